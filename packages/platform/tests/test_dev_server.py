"""`airnub dev`'s Prefect server gives SQLite one connection and leaves Postgres alone."""

import asyncio
import sys

from airnub_platform import dev, local_api


def test_the_dev_server_starts_through_the_single_connection_wrapper():
    command = dev.server_command(4321)
    assert command[:4] == [sys.executable, "-m", "airnub_platform.local_api", "prefect"]
    assert command[4:] == ["server", "start", "--host", "127.0.0.1", "--port", "4321"]


def test_the_dev_environment_selects_the_database_and_logs_lock_errors():
    env = dev.platform_env("http://127.0.0.1:4321/api", "sqlite+aiosqlite:////x/dev.db", {})
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "sqlite+aiosqlite:////x/dev.db"
    assert env["PREFECT_SERVER_LOG_RETRYABLE_ERRORS"] == "true"
    assert local_api.SINGLE_CONNECTION_ENV not in env  # on unless a benchmark turns it off


def test_only_sqlite_gets_a_single_connection():
    options = local_api.sqlite_engine_options("sqlite+aiosqlite:////x/dev.db")
    assert (options["pool_size"], options["max_overflow"]) == (1, 0)
    assert local_api.sqlite_engine_options("postgresql+asyncpg://u@127.0.0.1/prefect") == {}


def test_prefects_engine_for_a_sqlite_file_has_one_connection(tmp_path, monkeypatch):
    from prefect.server.database import configurations
    from sqlalchemy.pool import QueuePool

    # Restored after the test: the patch replaces this module attribute.
    # (read through vars(): the name is sqlalchemy's, re-exported without being declared)
    engine_factory = vars(configurations)["create_async_engine"]
    monkeypatch.setattr(configurations, "create_async_engine", engine_factory)
    local_api.single_connection_sqlite()
    url = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"

    async def pool_limits() -> tuple[int, int]:
        engine = await configurations.AioSqliteConfiguration(connection_url=url).engine()
        assert isinstance(engine.pool, QueuePool)
        return engine.pool.size(), engine.pool._max_overflow  # no public getter for the latter

    assert asyncio.run(pool_limits()) == (1, 0)
