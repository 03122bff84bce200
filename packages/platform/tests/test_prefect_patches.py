"""Every Prefect internal airnub patches or borrows exists in the installed Prefect, each
patch really takes effect, and a moved or reshaped target fails loudly, naming the patch.

Run this file first against a candidate Prefect when widening the pin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from airnub_platform import prefect_patches
from airnub_platform.prefect_patches import (
    BORROWED,
    PATCHES,
    SCHEDULE_FROM_CONFIG,
    SHARED_SSL_CONTEXT,
    SINGLE_CONNECTION_SQLITE,
    PrefectPatchError,
)
from airnub_platform.testing import loopback_http
from sqlalchemy.pool import QueuePool

INSTALLED = prefect_patches.prefect_version()


def current(module: ModuleType, name: str) -> Any:
    """A module attribute Prefect does not export, read the way a patch finds it."""
    return vars(module)[name]


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test patches inside Prefect is put back after it."""
    from prefect.client import orchestration
    from prefect.server.database import configurations

    engine_factory = current(configurations, "create_async_engine")
    monkeypatch.setattr(configurations, "create_async_engine", engine_factory)
    monkeypatch.setattr(orchestration, "ssl", current(orchestration, "ssl"))
    yield


# --- Every registered entry against the installed Prefect ----------------------------


@pytest.mark.parametrize("patch", PATCHES, ids=lambda patch: patch.name)
def test_every_patch_applies_to_the_installed_prefect(patch, restored):
    assert patch.apply() is True  # an optional one must not be skipped on the pinned Prefect
    assert patch.apply() is True  # and applying it again changes nothing


@pytest.mark.parametrize("borrowed", BORROWED, ids=lambda borrowed: borrowed.name)
def test_every_borrowed_internal_exists_in_the_installed_prefect(borrowed):
    assert callable(borrowed.get())


def test_the_registry_names_each_internal_once():
    names = [entry.name for entry in (*PATCHES, *BORROWED)]
    targets = [entry.target for entry in (*PATCHES, *BORROWED)]
    assert len(set(names)) == len(names) and len(set(targets)) == len(targets)


# --- The patches take effect ----------------------------------------------------------


def test_prefects_sqlite_engine_gets_one_connection_and_postgres_is_untouched(tmp_path, restored):
    import asyncio

    from prefect.server.database import configurations
    from sqlalchemy.ext.asyncio import create_async_engine

    SINGLE_CONNECTION_SQLITE.apply()
    SINGLE_CONNECTION_SQLITE.apply()
    factory = current(configurations, "create_async_engine")
    assert factory.__wrapped__ is create_async_engine  # wrapped once
    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"

    async def sqlite_pool() -> tuple[int, int]:
        engine = await configurations.AioSqliteConfiguration(connection_url=url).engine()
        pool = cast(QueuePool, engine.pool)
        return pool.size(), pool._max_overflow  # no public getter for the latter

    assert asyncio.run(sqlite_pool()) == (1, 0)
    postgres = factory("postgresql+asyncpg://u@127.0.0.1/prefect")
    default = create_async_engine("postgresql+asyncpg://u@127.0.0.1/p")
    assert cast(QueuePool, postgres.pool).size() == cast(QueuePool, default.pool).size()


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, written under ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _Version(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'"{INSTALLED}"'.encode()
        self.send_response(200 if self.path == "/api/admin/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _https_api(cert_file: Path, key_file: Path) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with loopback_http(_Version, tls=context) as url:
        yield f"{url}/api"


def _version_through_prefects_client(api: str, cafile: Path) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
        PREFECT_API_URL,
        temporary_settings,
    )

    settings: dict[Any, Any] = {
        PREFECT_API_URL: api,
        PREFECT_API_SSL_CERT_FILE: str(cafile),
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY: False,
        PREFECT_API_REQUEST_TIMEOUT: 10,
    }
    with temporary_settings(updates=settings), get_client(sync_client=True) as client:
        return client.api_version()


def test_prefects_clients_share_one_verified_context_per_ca_file(tmp_path, restored, monkeypatch):
    from prefect.client import orchestration

    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # the loopback server is reached directly
    monkeypatch.setattr(orchestration, "ssl", ssl)
    cert_file, key_file = _certificate(tmp_path, "api")
    stranger, _ = _certificate(tmp_path, "stranger")
    SHARED_SSL_CONTEXT.apply()
    with _https_api(cert_file, key_file) as api:
        assert _version_through_prefects_client(api, cert_file) == INSTALLED
        cert_file.unlink()  # a second client that parsed the CA file again would fail here
        assert _version_through_prefects_client(api, cert_file) == INSTALLED
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            _version_through_prefects_client(api, stranger)  # still verified, per CA file
        monkeypatch.setattr(orchestration, "ssl", ssl)  # unpatched, Prefect re-reads the file
        with pytest.raises(FileNotFoundError):
            _version_through_prefects_client(api, cert_file)


# --- A moved or reshaped target fails loudly, naming the patch ----------------------


def _one_line_naming(error: BaseException, entry: prefect_patches.Patch | object) -> str:
    message = str(error)
    assert "\n" not in message
    assert repr(entry.name) in message and entry.target in message  # type: ignore[attr-defined]
    return message


def test_a_removed_target_raises_naming_the_patch_and_writes_nothing(restored, monkeypatch):
    from prefect.server.database import configurations

    monkeypatch.delattr(configurations, "create_async_engine")
    with pytest.raises(PrefectPatchError) as raised:
        SINGLE_CONNECTION_SQLITE.apply()
    assert "not found in Prefect" in _one_line_naming(raised.value, SINGLE_CONNECTION_SQLITE)
    assert not hasattr(configurations, "create_async_engine")


def test_a_reshaped_target_raises_naming_the_patch(restored, monkeypatch):
    from prefect.server.database import configurations

    monkeypatch.setattr(configurations, "create_async_engine", lambda: None)  # takes no URL
    with pytest.raises(PrefectPatchError) as raised:
        SINGLE_CONNECTION_SQLITE.apply()
    assert "is not an engine factory" in _one_line_naming(raised.value, SINGLE_CONNECTION_SQLITE)


def test_a_moved_module_raises_naming_the_borrowed_internal():
    moved = dataclasses.replace(
        SCHEDULE_FROM_CONFIG,
        target="prefect.cli.deploy._moved_away._schedule_config_to_deployment_schedule",
    )
    with pytest.raises(PrefectPatchError) as raised:
        moved.get()
    _one_line_naming(raised.value, moved)


def test_a_prefect_outside_the_written_range_raises_before_touching_the_target(restored):
    from prefect.server.database import configurations

    before = current(configurations, "create_async_engine")
    newer = dataclasses.replace(SINGLE_CONNECTION_SQLITE, versions=f">{INSTALLED}")
    with pytest.raises(PrefectPatchError) as raised:
        newer.apply()
    assert f"Prefect {INSTALLED} is installed" in _one_line_naming(raised.value, newer)
    assert current(configurations, "create_async_engine") is before


def test_an_optional_speed_up_warns_once_naming_itself_and_skips(restored, monkeypatch, caplog):
    from prefect.client import orchestration

    monkeypatch.delattr(orchestration, "ssl")
    speed_up = dataclasses.replace(SHARED_SSL_CONTEXT, name="shared-ssl-context-moved")
    with caplog.at_level(logging.WARNING, logger=prefect_patches.__name__):
        assert speed_up.apply() is False
        assert speed_up.apply() is False
    warnings = [r.getMessage() for r in caplog.records if r.name == prefect_patches.__name__]
    assert len(warnings) == 1
    _one_line_naming(Exception(warnings[0]), speed_up)
    assert not hasattr(orchestration, "ssl")


def test_the_local_api_server_stops_with_one_line_naming_a_moved_patch(tmp_path):
    # A real server process whose Prefect lacks the engine factory: it must exit at once
    # with one line, not start serving without the patch nor print a traceback.
    script = (
        "import runpy, sys\n"
        "from prefect.server.database import configurations\n"
        "del configurations.create_async_engine\n"
        "sys.argv = ['local_api', 'serve', '0']\n"
        "runpy.run_module('airnub_platform.local_api', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and "'single-connection-sqlite'" in lines[0]


def test_a_moved_drain_fails_the_session_and_still_stops_its_local_api(tmp_path, monkeypatch):
    from airnub_platform import local_api

    moved = dataclasses.replace(
        prefect_patches.DRAIN_LOG_WORKER, target="prefect.logging.handlers.APILogWorker.moved"
    )
    before = os.environ.get("PREFECT_API_URL")
    with (
        pytest.raises(PrefectPatchError, match="'drain-log-worker'"),
        local_api.running(tmp_path / "prefect.db") as api,
    ):
        monkeypatch.setattr(prefect_patches, "DRAIN_LOG_WORKER", moved)
    assert api.process.poll() is not None  # stopped, not orphaned
    assert os.environ.get("PREFECT_API_URL") == before
