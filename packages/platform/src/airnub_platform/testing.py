"""Pytest support: one fast Prefect API per test session (a pytest11 plugin).

``prefect_test_harness`` builds and migrates a fresh database on every session.
Here a department's ``conftest.py`` calls :func:`start_session_api` when it is
imported, so the server (a copy of the cached, migrated template database)
boots on the second core while pytest imports the tests. Flow tests request
the ``prefect_api`` fixture, which waits for it and switches off the flow
heartbeat. Nothing here imports prefect before ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airnub_core import conventions

from airnub_platform import local_api
from airnub_platform.client_speedups import local_run_settings, preload_engine
from airnub_platform.scaffolding import render

if TYPE_CHECKING:  # imported where used: this plugin loads with every pytest session
    import ssl
    from http.server import BaseHTTPRequestHandler

_session: local_api.LocalAPI | None = None


def start_session_api() -> None:
    """Start the session's API now, unless one is running or ``PREFECT_API_URL`` is set."""
    global _session
    if _session is not None or os.environ.get("PREFECT_API_URL"):
        return
    scratch = Path(tempfile.mkdtemp(prefix="airnub-tests-"))
    os.environ["PREFECT_HOME"] = str(scratch / "home")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    _session = local_api.start(db=scratch / "prefect.db")
    os.environ["PREFECT_API_URL"] = _session.url

    def stop() -> None:
        local_api.drain_client_workers()
        assert _session is not None
        _session.stop(settle=False, keep_db=False)  # its database is deleted next
        shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(stop)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a healthy Prefect API, with the client speed-ups on for the session."""
    start_session_api()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if _session is not None:
        preload_engine()
        _session.wait_healthy()
    updates = {PREFECT_API_URL: os.environ["PREFECT_API_URL"], **local_run_settings()}
    with temporary_settings(updates=updates):
        yield os.environ["PREFECT_API_URL"]
    local_api.drain_client_workers()


def pytest_configure(config: pytest.Config) -> None:
    """Property tests are bounded and repeatable: the same examples on every run, no
    example database in the working tree. ``HYPOTHESIS_PROFILE=explore`` searches wider.

    And Ctrl-C means Ctrl-C: a session started as a background job inherits SIGINT
    ignored, and so would every process its tests start and then interrupt."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from hypothesis import settings
    except ImportError:  # a worker's install has no dev tools
        return
    settings.register_profile("airnub", max_examples=150, deadline=None, database=None,
                              derandomize=True, print_blob=True)  # fmt: skip
    settings.register_profile("explore", max_examples=5000, deadline=None, database=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "airnub"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that need no API first, while the session's server is still booting."""
    items.sort(key=lambda item: "prefect_api" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True)
def airnub_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its outputs under its own temporary data root."""
    root = tmp_path / "data"
    monkeypatch.setenv("AIRNUB_DATA_ROOT", str(root))
    return root


def run_whole_department(department: str, data_root: Path) -> list[Any]:
    """Run every stage of ``department`` writing under ``data_root``; returns the outcomes.

    For a module-scoped fixture, so several tests can read one run's outputs.
    """
    from airnub_platform import runner

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRNUB_DATA_ROOT", str(data_root))
        return runner.run_department(department, runner.plan(department, None, None), local=None)


def flow_logs(state: Any) -> str:
    """A finished flow run's log lines, as the API stored them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    local_api.drain_client_workers()  # logs reach the API in the background
    with get_client(sync_client=True) as client:
        run_ids = [state.state_details.flow_run_id]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)))
    return "\n".join(log.message for log in logs)


def published_anywhere(state: Any) -> str:
    """Everything a finished flow run left on the API that a reader could see: its log
    lines, its parameters and every artifact. A secret must never be in it."""
    from prefect.client.orchestration import get_client

    logs = flow_logs(state)
    with get_client(sync_client=True) as client:
        artifacts = " ".join(str(a.data) for a in client.read_artifacts())
        run = client.read_flow_run(state.state_details.flow_run_id)
    return f"{logs}\n{run.parameters}\n{artifacts}"


def write_department(root: Path, department: str, categories: dict[str, list[str]]) -> None:
    """Write a minimal department package under ``root``: the generators' stage
    orchestrators, and per category the demo flow (``testing/demo_category.py.j2``),
    which waits ``sleep_seconds`` in a task, optionally fails, and writes ``out.txt``."""
    package = root / department
    for stage in conventions.STAGES:
        (package / stage / "tasks").mkdir(parents=True)
        (package / stage / "__init__.py").touch()
        (package / stage / "tasks" / "__init__.py").touch()
        flow_file = package / f"{stage}{conventions.flow_suffix(department)}.py"
        flow_file.write_text(render("department/stage_flow.py.j2", stage=stage))
        for category in categories.get(stage, []):
            folder = package / stage / category
            folder.mkdir()
            (folder / "__init__.py").touch()
            action = f"make_{category}"
            module = folder / f"{action}{conventions.flow_suffix(department)}.py"
            module.write_text(render("testing/demo_category.py.j2", action=action))
            config = package / "configs" / "variables" / stage / f"{category}.yaml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(f"message: hello from {category}\n")
    (package / "__init__.py").touch()


def append_to_flow(root: Path, department: str, stage: str, category: str, text: str) -> Path:
    """Add ``text`` (contracts, a bug) to the end of a category flow that
    :func:`write_department` wrote under ``root``; returns the module's path."""
    flow = f"make_{category}{conventions.flow_suffix(department)}.py"
    module = root / department / stage / category / flow
    module.write_text(module.read_text() + text)
    return module


@contextmanager
def planted_fifo(path: Path) -> Iterator[threading.Thread]:
    """A FIFO at ``path`` whose writer gives up at once if anything opens it to read, so
    a reader that should have refused it reads "" instead of waiting for ever."""
    os.mkfifo(path)

    def write_nothing() -> None:
        os.close(os.open(path, os.O_WRONLY))  # blocks until a reader opens the FIFO

    writer = threading.Thread(target=write_nothing, daemon=True)
    writer.start()
    try:
        yield writer
    finally:
        # Release the writer: hold a reader open until it has opened and closed its end.
        # (One quick open-close would miss a writer that had not reached its open yet.)
        deadline = time.monotonic() + 30
        while writer.is_alive():
            reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(timeout=0.05)
            os.close(reader)
            assert time.monotonic() < deadline, "the FIFO's writer never got its reader"


@contextmanager
def importable_departments(root: Path, names: dict[str, str]) -> Iterator[Path]:
    """Departments written under ``root`` (see :func:`write_department`), importable and
    known to :func:`conventions.departments` by ``names`` (id -> display name) meanwhile."""
    sys.path.insert(0, str(root))
    known = {**conventions.departments(), **names}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conventions, "departments", lambda: known)
            yield root
    finally:
        sys.path.remove(str(root))


# --- scratch workspaces: a copy of the repository with departments of the test's own ----

GENERATORS = Path("tools") / "generators"
# What a scratch workspace holds unless told otherwise: two departments (so "each
# department" means more than one), with one category per stage.
SCRATCH_DEPARTMENTS = {"dept_scratch": "Scratch Team", "dept_scratch_two": "Second Team"}
# Their ingestion deployments, as the conventions name them: a literal, to check those.
SCRATCH_INGESTION_DEPLOYMENTS = {
    "dept_scratch": "Ingestion Flow (Scratch Team)/dept-scratch-ingestion",
    "dept_scratch_two": "Ingestion Flow (Second Team)/dept-scratch-two-ingestion",
}
# What add_department requires besides its id: the owners and alert channel of a test's own.
OWNED = ("--owner", "@airnub-tests/owners", "--alerts", "#airnub-test-alerts")
SCRATCH_CATEGORIES = {"ingestion": ["feed"], "processing": ["tidy"], "analysis": ["totals"]}


def unwind_on_stop_signals() -> None:
    """For a check run as a script: SIGTERM and Ctrl-C unwind through its finally blocks.

    SIGINT gets Python's own handler back even where the launcher ignored it (a shell's
    background job ignores SIGINT, and an ignored signal stays ignored across exec), so the
    processes the check starts, and the tests that send SIGINT, see the default again.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for commands in a copy: its own venv, not the one running us."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _git(root: Path, *args: str) -> str:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    return subprocess.run([*git, *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def copy_workspace(source: Path, target: Path) -> Path:
    """Copy what git tracks (and untracked, unignored files) into ``target``, as a new repo."""
    listed = _git(source, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in listed.split("\0"):
        if name and (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "commit", "-qm", "copy")
    return target


def generate(root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one of ``root``'s generators with stdin closed; raise with its stderr on failure."""
    done = subprocess.run(
        [sys.executable, str(root / GENERATORS / f"{script}.py"), *args],
        cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=clean_env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)}: {done.stderr.strip()}")
    return done


def scratch_workspace(
    target: Path,
    departments: dict[str, str] = SCRATCH_DEPARTMENTS,
    categories: dict[str, list[str]] = SCRATCH_CATEGORIES,
    source: Path | None = None,
) -> Path:
    """A copy of the repository holding only ``departments`` (id -> display name), made
    the way a user would: each new department is added with ``categories`` by the
    project's generators, then every department the source had is removed with
    ``remove_department``, in the copy's own ``.venv``. Tests that need a
    whole workspace use this, so they never depend on what the repository holds."""
    from airnub_core.storage import repository_root

    root = copy_workspace(source or repository_root() or Path.cwd(), target)
    # Installed first, as a user's checkout is after `uv run`: a department removed
    # later must leave the environment too, or it would still be listed.
    sync = ["uv", "sync", "--all-packages", "--locked", "--quiet"]
    subprocess.run(sync, cwd=root, env=clean_env(), check=True)
    originals = sorted((root / "packages").glob(f"{conventions.DEPARTMENT_PREFIX}*"))
    for department, display_name in departments.items():
        generate(root, "add_department", "--id", department, "--name", display_name, *OWNED)
        for stage, names in categories.items():
            for name in names:
                generate(root, "add_category", "--department", department, "--stage", stage,
                         "--id", name)  # fmt: skip
    for existing in originals:
        generate(root, "remove_department", "--id", existing.name)
    # What `uv run` does: install what is missing, remove nothing.
    subprocess.run([*sync, "--inexact"], cwd=root, env=clean_env(), check=True)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", f"only {', '.join(departments)}")
    return root


@pytest.fixture(scope="session")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scratch workspace per test session (see :func:`scratch_workspace`)."""
    return scratch_workspace(tmp_path_factory.mktemp("scratch"))


def write_department_project(
    root: Path,
    department: str,
    display_name: str,
    categories: dict[str, list[str]],
    prefect_yaml: str | None = None,
    owners: dict[str, str] | None = None,
) -> Path:
    """``root/packages/<department>`` laid out as in the repository, returned.

    The package goes under ``src/`` beside a ``prefect.yaml`` (``prefect_yaml``, or the
    one generated for a new department) and a ``.dist-info`` naming
    the department, so a process with ``src/`` on its path finds it as if installed.
    ``owners`` (entry point group -> value, e.g. ``{"airnub.owners": "@a/b"}``) go into
    its metadata too; by default it declares none.
    """
    folder = root / "packages" / department
    src = folder / "src"
    write_department(src, department, categories)
    info = src / f"{department}-0.0.0.dist-info"
    info.mkdir()
    distribution = conventions.distribution_name(department)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.0\n")
    declared = "".join(
        f"[{group}]\n{department} = {value}\n" for group, value in (owners or {}).items()
    )
    (info / "entry_points.txt").write_text(
        f"[{conventions.ENTRY_POINT_GROUP}]\n{display_name} = {department}\n{declared}"
    )
    (folder / "prefect.yaml").write_text(prefect_yaml or _prefect_yaml(department))
    return folder


def _prefect_yaml(department: str) -> str:
    from airnub_platform.prefect_yaml import render

    return render(department, None)  # what `airnub deployments write` makes for a new one


@pytest.fixture
def make_department(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Build throwaway departments with :func:`write_department_project`, known to
    ``conventions.departments()`` and importable until the test ends."""
    with ExitStack() as stack:

        def make(department: str, categories: dict[str, list[str]], **options: Any) -> Path:
            root = tmp_path_factory.mktemp(department)
            default = conventions.humanize(department.split("_", 1)[1])
            display = options.pop("display_name", default)
            folder = write_department_project(root, department, display, categories, **options)
            stack.enter_context(importable_departments(folder / "src", {department: display}))
            return folder

        yield make


def department_pyproject(
    department: str, display_name: str, owners: str = "@airnub-tests/owners",
    alerts: str = "#airnub-test-alerts",
) -> str:  # fmt: skip
    """A department's ``pyproject.toml``, the metadata its id, display name, owners and
    alert channel come from."""
    distribution = conventions.distribution_name(department)
    return (
        f'[project]\nname = "{distribution}"\ndependencies = ["airnub-core"]\n'
        f'[project.entry-points."{conventions.ENTRY_POINT_GROUP}"]\n'
        f'"{display_name}" = "{department}"\n'
        f'[project.entry-points."airnub.owners"]\n{department} = "{owners}"\n'
        f'[project.entry-points."airnub.alerts"]\n{department} = "{alerts}"\n'
    )


# An S3-compatible server on loopback (moto in server mode, as s3fs's own tests use), for
# tests and checks that put the data root in object storage.
S3_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "airnub-test-key",
    "AWS_SECRET_ACCESS_KEY": "airnub-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Start ``moto.server`` on ``host``, yield its endpoint URL, stop it by PID."""
    import httpx

    port = port or local_api.free_port()
    endpoint = f"http://{host}:{port}"
    log = Path(tempfile.mkdtemp(prefix="airnub-s3-")) / "moto.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-800:]
                    raise RuntimeError(f"moto server on {endpoint} did not start: {tail}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        shutil.rmtree(log.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The endpoint of the session's S3-compatible server (started on first use)."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_data_root(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """This test's data root in a bucket of its own, with the standard S3 variables set."""
    import hashlib

    import s3fs

    for name, value in {**S3_TEST_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    bucket = "t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    monkeypatch.setenv("AIRNUB_DATA_ROOT", f"s3://{bucket}/root")
    from airnub_core import storage

    return storage.data_root(use_block=False)


# --- a server of a module's own: for tests that compare everything the server holds -----


@pytest.fixture(scope="module")
def own_prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty Prefect API for one test module, the process's client pointed at it
    meanwhile (the session's server holds other modules' objects)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    db = tmp_path_factory.mktemp("own-api") / "prefect.db"
    with local_api.running(db) as api, temporary_settings(updates={PREFECT_API_URL: api.url}):
        yield api.url


def server_objects(client: Any) -> str:
    """Everything a Prefect server holds that airnub could write, as one JSON text:
    deployments, flows, Variables, blocks (secret values included), work pools and
    automations. Equal before and after a command that writes nothing."""
    import json

    from airnub_core.variables import read_all

    found = {
        "deployments": read_all(client.read_deployments),
        "flows": read_all(client.read_flows),
        "variables": client.read_variables(),
        "blocks": client.read_block_documents(include_secrets=True),
        "work_pools": client.read_work_pools(),
        "automations": client.read_automations(),
    }
    dumped = {k: [item.model_dump(mode="json") for item in v] for k, v in found.items()}
    return json.dumps(dumped, sort_keys=True)


def changed_repository(folder: Path) -> tuple[Path, str]:
    """A git repository around a department folder from ``make_department``
    (``ROOT/packages/<id>``), with a ``uv.lock`` naming it: a base commit, then a head
    commit changing the department. Returns (the root, the base commit)."""
    root, department = folder.parent.parent, folder.name
    (root / "uv.lock").write_text(
        f'version = 1\n[[package]]\nname = "{conventions.distribution_name(department)}"\n'
        f'version = "0.0.0"\nsource = {{ editable = "packages/{department}" }}\n'
    )
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    base = _git(root, "rev-parse", "HEAD").strip()
    (folder / "notes.txt").write_text("a change\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "head")
    return root, base


HANDLER_TIMEOUT = 10.0  # seconds a client may stall a handler's socket read or write


@contextmanager
def loopback_http(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 in a thread; yield the base URL (``http://`` or,
    with ``tls``, ``https://127.0.0.1:<port>``) and stop the server on the way out.

    Each handler thread is a daemon whose socket times out, and closing the server joins
    none of them: a client that connects and never finishes its request (a pooled
    connection left open by a failed command) cannot hang the test's teardown. One did,
    and held CI for 75 minutes."""
    from http.server import ThreadingHTTPServer

    timed = type(handler.__name__, (handler,), {"timeout": HANDLER_TIMEOUT})
    server = ThreadingHTTPServer(("127.0.0.1", 0), timed)
    server.daemon_threads = True
    server.block_on_close = False
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    # A short poll: shutdown() waits for it, once per test
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=HANDLER_TIMEOUT)


@contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[tuple[str, queue.Queue[dict]]]:
    """An HTTP server on 127.0.0.1 that queues every JSON body POSTed to it; yields its
    URL (ending in ``path``) and the queue, and stops it on the way out."""
    from http.server import BaseHTTPRequestHandler

    received: queue.Queue[dict] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.put(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass  # what arrived is read from the queue, not logged

    with loopback_http(Handler) as url:
        yield f"{url}{path}", received


# --- a department that a separate process sees installed -----------------------------


def installed_department(
    root: Path, department: str, display_name: str, categories: dict[str, list[str]]
) -> dict[str, str]:
    """Write ``department`` under ``root`` (see :func:`write_department`) with the package
    metadata that makes it installed for any process with ``root`` on its ``PYTHONPATH``;
    returns that process's environment. For testing the ``airnub`` command itself, in a
    subprocess, without syncing a workspace."""
    write_department(root, department, categories)
    info = root / f"{department}-0.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {department.replace('_', '-')}\nVersion: 0\n"
    )
    info.joinpath("entry_points.txt").write_text(
        f"[airnub.departments]\n{display_name} = {department}\n\n"
        f"[airnub.owners]\n{department} = @airnub-tests/owners\n\n"
        f"[airnub.alerts]\n{department} = #airnub-test-alerts\n"
    )
    return {**os.environ, "PYTHONPATH": str(root)}


# A command line for ``python -c``: runs the `airnub` CLI with the rest of ``argv``, then says
# on stderr's last line whether anything imported prefect (``imported prefect: False``).
CLI_SAYING_IF_PREFECT_WAS_IMPORTED = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('imported prefect:', 'prefect' in sys.modules,\n"
    "                              file=sys.stderr))\n"
    "from airnub_platform.cli import main\n"
    "main()\n"
)


@contextmanager
def api_at(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point this process, and the commands the test runs, at the Prefect API ``url``, with
    no client retries: a hostile answer is the command's to report, not Prefect's to retry."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", url)
    monkeypatch.setenv("PREFECT_CLIENT_MAX_RETRIES", "0")
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_CLIENT_MAX_RETRIES: 0}):
        yield url
