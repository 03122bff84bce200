"""The object-storage data root attacked: hostile root URLs, blocks naming other endpoints,
a hostile S3 server on loopback (redirects, drip-fed bodies) and a hostile bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import s3fs
from airnub_core import object_storage, storage
from airnub_core.object_storage import remote_root
from airnub_core.storage import UnsupportedDataRoot
from airnub_platform.testing import S3_TEST_CREDENTIALS

KEY, SECRET = S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"], S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
# Short deadlines for a hostile server: one attempt, one second to connect and per read.
QUICK = {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}}


class Seen:
    """What a loopback server was asked: (method, path, the Authorization header)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []


Answer = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def loopback_server(answer: Answer) -> Iterator[tuple[str, Seen]]:
    """A threaded HTTP server on 127.0.0.1 answering every request with ``answer``;
    yields its URL and what it saw, and is shut down (with a deadline) afterwards."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue"

        def handle_one_request(self) -> None:
            self.connection.settimeout(10)  # a client that stops talking frees the thread
            super().handle_one_request()

        def _any(self) -> None:
            seen.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            answer(self)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str | None) -> None:
    for name, value in S3_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


# --- hostile root URLs -------------------------------------------------------------------


# The URLs naming anything but plain keys are among the refused roots in
# test_object_storage.py (test_a_root_that_cannot_be_used_is_refused_in_one_line_...).


def test_odd_but_plain_roots_name_the_keys_they_spell(s3_endpoint, monkeypatch):
    s3_env(monkeypatch, s3_endpoint)
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir("hostile-plain")
    for url, key in [("S3://hostile-plain/Root/", "hostile-plain/Root"),
                     ("s3://hostile-plain/dü", "hostile-plain/dü")]:  # fmt: skip
        root = remote_root(url, "test")
        assert root.path == key
        storage.write_text_atomic(root / "f.txt", "x")
    found = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False).find(
        "hostile-plain"
    )
    assert sorted(found) == ["hostile-plain/Root/f.txt", "hostile-plain/dü/f.txt"]


# --- endpoints: keys go only where they belong ---------------------------------------------


def refuse(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(403)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


@pytest.mark.parametrize("named_by", ["settings", "credentials block without keys"])
def test_keys_from_the_environment_never_go_to_an_endpoint_a_block_names(named_by, monkeypatch):
    """The worker's AWS variables sign for $AWS_ENDPOINT_URL; a block on the API (which
    anyone with API access may edit) naming another endpoint would have them signed for
    a server of its choosing (the key id in clear; a session token too)."""
    s3_env(monkeypatch, "http://127.0.0.1:9")
    with loopback_server(refuse) as (hostile, seen):
        named = {"client_kwargs": {"endpoint_url": hostile}}
        settings, credentials = (named, None) if named_by == "settings" else (None, named)
        with pytest.raises(UnsupportedDataRoot, match="names an endpoint other than") as refused:
            root = remote_root("s3://bucket/root", "the block", settings, credentials)
            storage.write_text_atomic(root / "x.txt", "x")
        assert seen.requests == []
    assert "\n" not in str(refused.value) and KEY not in str(refused.value)


def test_a_block_endpoint_without_environment_endpoint_is_refused_for_chain_keys(monkeypatch):
    s3_env(monkeypatch, None)  # the chain's keys are AWS's
    with pytest.raises(UnsupportedDataRoot, match=r"AWS's own endpoint"):
        remote_root("s3://bucket/root", "b", {"endpoint_url": "http://127.0.0.1:9"})
    anonymous = {"endpoint_url": "http://127.0.0.1:9", "anon": True}  # signs nothing: fine
    assert remote_root("s3://bucket/root", "b", anonymous).path == "bucket/root"


@pytest.mark.parametrize(
    "endpoint",
    ["http://user:pw@127.0.0.1:9", "ftp://127.0.0.1:9", "http://127.0.0.1:9?x=1", "http://:9",
     "http://127.0.0.1:port"],
)  # fmt: skip
def test_an_endpoint_that_is_not_a_plain_server_url_is_refused(endpoint, monkeypatch):
    s3_env(monkeypatch, None)
    keys = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint}}
    with pytest.raises(UnsupportedDataRoot, match="not a plain http") as refused:
        remote_root("s3://bucket/root", "the block", None, keys)
    assert "pw" not in str(refused.value) and "\n" not in str(refused.value)


def test_an_endpoint_spelled_with_other_case_or_default_port_is_the_same_server(
    s3_endpoint, monkeypatch
):
    """The block's credentials name ``HTTP://127.0.0.1:PORT/``, the storage block's
    settings ``http://127.0.0.1:PORT``: one server, so the write goes through."""
    s3_env(monkeypatch, None)
    shouted = s3_endpoint.upper().replace("HTTP://", "HTTP://") + "/"
    keys = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": shouted}}
    fresh = s3fs.S3FileSystem(key=KEY, secret=SECRET, skip_instance_cache=True,
                              client_kwargs={"endpoint_url": s3_endpoint})  # fmt: skip
    fresh.mkdir("hostile-case")
    root = remote_root("s3://hostile-case/r", "b", {"endpoint_url": s3_endpoint}, keys)
    storage.write_text_atomic(root / "f.txt", "same server")
    assert fresh.cat("hostile-case/r/f.txt") == b"same server"
    assert object_storage.same_endpoint("https://h", "HTTPS://H:443/")
    assert not object_storage.same_endpoint("http://h", "https://h")  # a token in clear


def test_a_redirect_from_the_endpoint_does_not_carry_keys_to_another_host(monkeypatch):
    """A hostile endpoint answers every request with a redirect (a plain 307 and S3's own
    301 naming another region) to a second server: no request reaches that server."""
    s3_env(monkeypatch, None)
    with loopback_server(refuse) as (elsewhere, other):

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            status = 301 if handler.command in ("HEAD", "GET") else 307
            body = (b"<Error><Code>PermanentRedirect</Code>"
                    b"<Endpoint>" + elsewhere.encode()[7:] + b"</Endpoint></Error>")  # fmt: skip
            handler.send_response(status)
            handler.send_header("Location", f"{elsewhere}{handler.path}")
            handler.send_header("x-amz-bucket-region", "eu-west-3")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)

        with loopback_server(redirect) as (hostile, seen):
            settings = {"config_kwargs": QUICK}
            keys = {"key": KEY, "secret": SECRET, "token": "session-token-do-not-leak",
                    "client_kwargs": {"endpoint_url": hostile}}  # fmt: skip
            root = remote_root("s3://bucket/root", "b", settings, keys)
            with pytest.raises(Exception):  # noqa: B017 -- any refusal will do; none leaks
                storage.write_text_atomic(root / "x.txt", "the body must not leak")
            with pytest.raises(Exception):  # noqa: B017
                storage.read_csv(root / "x.csv")
            assert seen.requests  # the endpoint itself was asked
    assert other.requests == []


# --- a hostile server's bodies, a hostile bucket ------------------------------------------


def test_a_body_drip_fed_under_every_read_timeout_ends_at_the_operation_deadline(monkeypatch):
    """The server lists a 1000-byte object, then sends its body a byte at a time, each
    well inside the read timeout: the read ends with the deadline's one-line error."""
    s3_env(monkeypatch, None)
    monkeypatch.setattr(object_storage, "OPERATION_DEADLINE", 3.0)
    stop = threading.Event()

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200 if handler.command == "HEAD" else 206)
        handler.send_header("Content-Length", "1000")
        handler.send_header("ETag", '"v1"')
        handler.send_header("Last-Modified", "Mon, 30 Nov 2026 07:00:00 GMT")
        handler.end_headers()
        if handler.command == "GET":
            while not stop.wait(0.2):
                handler.wfile.write(b"x")
                handler.wfile.flush()

    with loopback_server(drip) as (hostile, _):
        settings = {"config_kwargs": QUICK}
        keys = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": hostile}}
        root = remote_root("s3://bucket/root", "b", settings, keys)
        try:
            with pytest.raises(TimeoutError, match=r"x\.csv: object storage did not answer"):
                storage.read_csv(root / "x.csv")
        finally:
            stop.set()


def test_an_output_replaced_by_another_host_mid_read_is_not_taken_whole(s3_data_root, monkeypatch):
    """Another host replaces the object between two ranges of one read: the reader is
    told, instead of digesting half of each version."""
    monkeypatch.setattr(object_storage, "READ_RANGE", 4)
    path = storage.write_text_atomic(s3_data_root / "big.txt", "aaaaaaaaaaaa")
    other = s3fs.S3FileSystem(skip_instance_cache=True)
    replaced = pytest.raises(OSError, match="replaced while it was read")
    with replaced, storage.open_output(path) as handle:
        assert handle.read(4) == b"aaaa"
        other.pipe_file(path.path, b"bbbbbbbbbbbb")
        handle.read()
    assert storage.output_digest(path) is not None  # read whole again: fine


def test_a_folder_marker_at_an_outputs_name_is_not_an_output(s3_data_root):
    """The bucket holds ``feed/a.csv/`` (a console's "folder") and ``feed/b.csv/x``."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.pipe_file(f"{s3_data_root.path}/feed/a.csv/", b"")
    fs.pipe_file(f"{s3_data_root.path}/feed/b.csv/x", b"1")
    for name in ("a.csv", "b.csv"):
        path = s3_data_root / "feed" / name
        assert storage.output_digest(path) is None
        with pytest.raises(FileNotFoundError):
            storage.read_csv(path)
        assert storage.remove_output(path) is False
    assert fs.exists(f"{s3_data_root.path}/feed/b.csv/x")
    as_results = [str(s3_data_root / "feed" / name) for name in ("a.csv", "b.csv", "b.csv/x")]
    assert storage.folder_stats(as_results) == {"files": 1, "bytes": 1}


def test_a_giant_manifest_planted_in_the_bucket_is_refused_unread(s3_data_root, monkeypatch):
    from airnub_core import downloads
    from airnub_core.sources import SourceError

    monkeypatch.setattr(downloads, "MANIFEST_LIMIT", 1000)
    storage.write_bytes_atomic(s3_data_root / downloads.MANIFEST, b" " * 5000)
    with pytest.raises(SourceError, match=r"manifest\.json: refused, larger than"):
        downloads.load_manifest(s3_data_root)


@pytest.mark.parametrize(
    "file", ["../other/a.csv", "sub/a.csv", "/root/a.csv", "a.csv/", "..", "s3://bucket/x"]
)
def test_a_manifest_in_the_bucket_naming_keys_outside_its_folder_is_refused(
    file, s3_data_root, httpserver
):
    """Nothing is fetched, nothing removed: the object the entry names stays."""
    from airnub_core.downloads import MANIFEST, download_files
    from airnub_core.sources import SourceError

    url = httpserver.url_for("/a.csv")
    bystander = storage.write_text_atomic(s3_data_root / "other" / "a.csv", "keep me")
    entry = {"url": url, "file": file, "sha256": "0" * 64, "size": 1, "status": "downloaded",
             "checked_at": "2026-11-30T00:00:00+00:00"}  # fmt: skip
    folder = s3_data_root / "feed"
    storage.write_json_atomic(folder / MANIFEST, {"files": [entry]})
    with pytest.raises(SourceError, match="not the plain file name"):
        download_files([url], folder)
    assert httpserver.log == []
    assert storage.output_digest(bystander) is not None
