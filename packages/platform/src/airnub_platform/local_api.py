"""The embedded default API: Prefect's server app on loopback over a local SQLite file.

Prefect's own ephemeral mode re-runs migrations and block registration on every
start (about 6-12 s here) and gives SQLite a pool of connections that fight over
its write lock when categories run concurrently. This module starts the same app
with three changes, measured in ``bench/``:

* a migrated template database is built once per Prefect version and copied, by the
  server process itself while the caller goes on importing;
* migrations run only when the database was not migrated by this Prefect version;
* the server process writes through a single connection (see :func:`sqlite_engine_options`),
  so concurrent writers queue instead of retrying on ``database is locked``.

It is only used when no ``PREFECT_API_URL`` is configured.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from airnub_platform import prefect_patches
from airnub_platform.prefect_patches import sqlite_engine_options as sqlite_engine_options

PREFECT_VERSION = version("prefect")
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}
SINGLE_CONNECTION_ENV = "AIRNUB_SQLITE_SINGLE_CONNECTION"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "airnub"
    return Path(os.environ.get("AIRNUB_CACHE_DIR", default)).expanduser()


def _marker(db: Path) -> Path:
    return db.with_name(f"{db.name}.migrated-{PREFECT_VERSION}")


def _server_env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        **QUIET_ENV,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}",
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT_UI_ENABLED": "0",
    }


def template_path() -> Path:
    """The cached migrated empty database of this Prefect version."""
    return cache_dir() / f"prefect-{PREFECT_VERSION}-template.db"


def prepare_db(db: Path) -> None:
    """Make ``db`` ready to serve without migrating on start; runs in the server process.

    Migrating here, not in a process of its own, imports ``prefect.server`` once for
    both (a cold start used to import it twice, back to back, before the server booted).
    """
    if _marker(db).exists() and db.exists():
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists() and _copy_template(db):
        _marker(db).touch()
        return
    fresh = not db.exists()
    _migrate_here()  # an older or foreign database is upgraded in place
    _marker(db).touch()
    if fresh:
        _cache_template(db)


def _copy_template(db: Path) -> bool:
    """Copy the cached template to ``db`` if one is there and sound; drop a broken one."""
    template = template_path()
    partial = db.with_name(f"{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, partial)
    except OSError:  # none cached yet, or the cache cannot be read: migrate instead
        return False
    if not _sound(partial):
        partial.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            template.unlink()  # truncated or corrupt: the next fresh database rebuilds it
        _say(f"the cached template {template} was broken; migrating and caching it again")
        return False
    os.replace(partial, db)
    return True


def _sound(db: Path) -> bool:
    """True if ``db`` is an intact SQLite file that Prefect's migrations have stamped."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as connection:
            (check,) = connection.execute("PRAGMA quick_check").fetchone()
            stamped = connection.execute("SELECT count(*) FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return check == "ok" and stamped == (1,)


def _cache_template(db: Path) -> None:
    """Snapshot the just-migrated ``db`` as the template, atomically; best effort.

    Two processes starting cold at once each write their own temporary file and
    rename it into place, so a reader only ever sees a whole template.
    """
    template = template_path()
    partial = template.with_name(f"{template.name}.{os.getpid()}.tmp")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(sqlite3.connect(db)) as source,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            source.backup(copy)  # consistent, WAL included, while nothing else writes
        os.replace(partial, template)
    except (OSError, sqlite3.Error) as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        _say(f"cannot cache the migrated template in {template.parent} ({error}); "
             "each new Prefect home migrates its own database until it can")  # fmt: skip


def _say(line: str) -> None:
    print(f"airnub local API: {line}", file=sys.stderr, flush=True)  # into the server log


def _migrate_here() -> None:
    """Create or upgrade the configured database and register block types."""
    import asyncio

    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    async def create() -> None:
        db = provide_database_interface()
        await db.create_db()
        async with await db.session() as session:
            await run_block_auto_registration(session=session)
            await session.commit()

    asyncio.run(create())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(api_url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``/health`` until it answers 200; fail at once if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prefect server exited with {process.returncode}; see {log}")
        with (
            contextlib.suppress(OSError),  # not listening yet
            urllib.request.urlopen(f"{api_url}/health", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout:.0f} s; see {log}")


@dataclass
class LocalAPI:
    url: str
    process: subprocess.Popen[bytes]
    db: Path

    def wait_healthy(self, timeout: float = 90.0) -> None:
        try:
            wait_healthy(self.url, self.process, self.db.with_name(f"{self.db.name}.server.log"),
                         timeout)  # fmt: skip
        except TimeoutError:
            self.stop()
            raise

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the server has recorded every task run it was told about.

        Task-run states reach the database through events processed in the
        background; stopping before they are would leave runs looking unfinished.
        """
        body = json.dumps(
            {"task_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING", "SCHEDULED"]}}}}
        ).encode()
        deadline = time.monotonic() + timeout
        previous = None
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                counts = tuple(
                    int(_post(f"{self.url}/task_runs/count", data)) for data in (body, b"{}")
                )
            except OSError:
                return
            if counts[0] == 0 and counts == previous:
                return
            previous = counts
            time.sleep(0.1)

    def stop(self, settle: bool = True, keep_db: bool = True) -> None:
        """Stop the server; ``settle`` first lets it record what it was told.

        Without ``keep_db`` (its database is deleted next) the server is killed at once:
        its graceful shutdown takes seconds that nobody needs to wait for.
        """
        if self.process.poll() is None:
            if settle:
                self.settle()
            if not keep_db:
                self.process.kill()
                self.process.wait()
                return
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def start(db: Path | None = None, port: int | None = None) -> LocalAPI:
    """Start the server without waiting for it; call ``wait_healthy`` before use."""
    db = db or prefect_home() / "prefect.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    cmd = [sys.executable, "-m", "airnub_platform.local_api", "serve", str(port), str(db)]
    log = db.with_name(f"{db.name}.server.log").open("ab")
    process = subprocess.Popen(
        cmd, env=_server_env(db), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    return LocalAPI(f"http://127.0.0.1:{port}/api", process, db)


def drain_client_workers() -> None:
    """Flush queued logs and events so nothing is lost or stalls when the API stops."""
    if "prefect" not in sys.modules:
        return
    for drain in prefect_patches.client_drains():
        drain(timeout=10)


@contextlib.contextmanager
def running(db: Path | None = None) -> Iterator[LocalAPI]:
    """Serve the local API and point this process's Prefect client at it."""
    api = start(db)
    previous = os.environ.get("PREFECT_API_URL")
    try:
        api.wait_healthy()
        os.environ["PREFECT_API_URL"] = api.url
        yield api
    finally:
        try:
            drain_client_workers()
        finally:  # a drain that fails must not leave the server running
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
            api.stop()


def single_connection_sqlite() -> None:
    """Make Prefect's server engine use :func:`sqlite_engine_options` in this process.

    Like Prefect's own ``:memory:`` setup; Postgres engines are left as Prefect builds them.
    """
    prefect_patches.SINGLE_CONNECTION_SQLITE.apply()


def single_connection_enabled() -> bool:
    return os.environ.get(SINGLE_CONNECTION_ENV, "1") != "0"  # "0": the benchmarks' baseline


def _main(argv: list[str]) -> None:
    command = argv[0]
    if command == "serve":
        import uvicorn

        if single_connection_enabled():
            single_connection_sqlite()
        if len(argv) > 2:
            prepare_db(Path(argv[2]))
        uvicorn.run(
            "prefect.server.api.server:create_app",
            factory=True,
            host="127.0.0.1",
            port=int(argv[1]),
            log_level="error",
            lifespan="on",
        )
    elif command == "prepare" and len(argv) == 2:
        # Build (or copy) a ready database ahead of time, e.g. to warm the template cache.
        os.environ.update(_server_env(Path(argv[1])))
        prepare_db(Path(argv[1]))
    elif command == "prefect":
        # The prefect CLI (`airnub dev` runs `server start`: UI and services included),
        # with the server's SQLite on one connection as in `serve`.
        if single_connection_enabled():
            single_connection_sqlite()
        from prefect.cli import app

        sys.argv = ["prefect", *argv[1:]]
        app()
    else:
        raise SystemExit(
            "usage: python -m airnub_platform.local_api serve PORT [DB]|prepare DB|prefect ARGS...;"
            f" got {argv}"
        )


if __name__ == "__main__":
    try:
        _main(sys.argv[1:])
    except prefect_patches.PrefectPatchError as error:
        raise SystemExit(str(error)) from None  # one line, in the server log or dev's output
    except (OSError, sqlite3.Error) as error:  # e.g. a database folder it cannot write
        raise SystemExit(f"airnub local API: {error}") from None
