"""A hostile server cannot hold a read open for ever, nor fill memory: every request has an
overall deadline (redirects and body included) and a size limit. Loopback servers only."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from airnub_core.sources import Reader, SourceError, TransientSourceError
from werkzeug import Response

Handler = Callable[[socket.socket], None]


@contextmanager
def raw_server(handle: Handler) -> Iterator[str]:
    """A one-connection-at-a-time TCP server on 127.0.0.1 that runs ``handle`` per client."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)  # the request; its content does not matter here
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/data"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _drip(conn: socket.socket, head: bytes, byte: bytes) -> None:
    """Send ``head``, then one ``byte`` every 0.1 s: each read succeeds in time."""
    conn.sendall(head)
    for _ in range(600):  # a minute at most, if the client never gives up
        conn.sendall(byte)
        time.sleep(0.1)


def drip(conn: socket.socket) -> None:
    """Promise a large body, then drip it."""
    _drip(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x")


def drip_headers(conn: socket.socket) -> None:
    """A slow-loris answer: one header byte at a time, never finishing the headers."""
    _drip(conn, b"HTTP/1.1 200 OK\r\n", b"X")


def drip_until_close(conn: socket.socket) -> None:
    """No length: the body ends when the server closes, so a cut must not pass for an end."""
    _drip(conn, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x")


@pytest.mark.parametrize(
    "handler", [drip, drip_headers, drip_until_close], ids=lambda h: h.__name__
)
def test_the_deadline_holds_for_a_body_headers_and_a_close_delimited_body(handler):
    with (
        raw_server(handler) as url,
        Reader(timeout=5, retries=0, deadline=1) as reader,
        pytest.raises(TransientSourceError) as error,
    ):
        reader.read(url)
    assert str(error.value) == f"{url}: no complete response within its deadline of 1 s"


def test_the_deadline_failure_is_retried_like_a_timeout():
    calls = []

    def counting_drip(conn: socket.socket) -> None:
        calls.append(1)
        drip(conn)

    with (
        raw_server(counting_drip) as url,
        Reader(timeout=5, retries=1, backoff=0, deadline=0.5) as reader,
        pytest.raises(TransientSourceError, match="deadline"),
    ):
        reader.read(url)
    assert len(calls) == 2


def test_a_redirect_chain_shares_one_deadline(httpserver):
    def slow_redirect(request):
        time.sleep(0.3)
        hop = int(request.path.rsplit("/", 1)[-1])
        return Response(status=302, headers={"Location": f"/hop/{hop + 1}"})

    for hop in range(8):
        httpserver.expect_request(f"/hop/{hop}").respond_with_handler(slow_redirect)
    with (
        Reader(timeout=5, retries=0, deadline=1) as reader,
        pytest.raises(TransientSourceError, match="deadline of 1 s") as error,
    ):
        reader.read(httpserver.url_for("/hop/0"))
    assert "/hop/" in str(error.value)
    assert len(httpserver.log) < 8  # it stopped following the chain at the deadline


def test_a_declared_oversize_body_is_refused_before_it_is_read(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * 2048)
    with Reader(retries=3, max_bytes=1024) as reader, pytest.raises(SourceError) as error:
        reader.read(httpserver.url_for("/big"))
    assert not isinstance(error.value, TransientSourceError)  # not retried: it will not shrink
    assert "2048 bytes is more than the limit of 1024" in str(error.value)
    assert [request.path for request, _ in httpserver.log].count("/big") == 1


def test_an_undeclared_oversize_body_is_cut_off():
    def endless(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(1000):
            conn.sendall(b"x" * 4096)

    with (
        raw_server(endless) as url,
        Reader(retries=0, max_bytes=64 * 1024) as reader,
        pytest.raises(SourceError, match="more than the limit of 65536 bytes"),
    ):
        reader.read(url)


def test_a_compressed_bomb_is_measured_after_decompression(httpserver):
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # about 4 KiB on the wire
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    with (
        Reader(retries=0, max_bytes=1024 * 1024) as reader,
        pytest.raises(SourceError, match="more than the limit"),
    ):
        reader.read(httpserver.url_for("/bomb"))


def test_a_prompt_answer_is_unaffected_by_the_limits(httpserver):
    httpserver.expect_request("/ok").respond_with_json({"fine": True})
    with Reader(retries=0, deadline=5, max_bytes=100) as reader:
        assert reader.json(httpserver.url_for("/ok")) == {"fine": True}


def test_the_deadline_is_set_in_config_and_reaches_every_fetching_task(tmp_path):
    from airnub_core.config import PagedJsonSettings
    from airnub_core.tasks import download_files_task, extract_links_task, fetch_json_pages_task

    with raw_server(drip) as url:
        settings = PagedJsonSettings(url=url, deadline_seconds=0.5, retries=0, timeout_seconds=5)
        options = settings.reader_options()
        options.pop("cross_origin")
        calls = [
            lambda: fetch_json_pages_task.fn(url, **settings.reader_options()),
            lambda: download_files_task.fn([url], tmp_path / "files", **options),
            lambda: extract_links_task.fn(url, False, **options),
        ]
        for call in calls:
            with pytest.raises(TransientSourceError, match=r"deadline of 0\.5 s"):
                call()
