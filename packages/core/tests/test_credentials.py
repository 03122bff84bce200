"""Credentials stay with their origin, and remote pages never choose a local read.

Two real HTTP servers on loopback play the configured API and a hostile one; a page
of the first tries to send the reader (and its token) to the second, or to a file."""

import re

import pytest
from airnub_core.downloads import download_files
from airnub_core.sources import Reader, SourceError, fetch_json_pages, origin
from pytest_httpserver import HTTPServer
from werkzeug import Response

TOKEN = {"Authorization": "Bearer tok-origin-only"}


@pytest.fixture
def elsewhere():
    """A second server: another origin (same host, another port)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def authorizations(server) -> list[str | None]:
    return [request.headers.get("Authorization") for request, _ in server.log]


def test_a_next_link_to_another_origin_is_refused_and_gets_nothing(httpserver, elsewhere):
    far = elsewhere.url_for("/steal")
    elsewhere.expect_request("/steal").respond_with_json({"results": [], "next": None})
    httpserver.expect_request("/api").respond_with_json({"results": [1], "next": far})
    refused = re.escape("refused a link to another origin, http://127.0.0.1:")
    with pytest.raises(SourceError, match=refused):
        fetch_json_pages(httpserver.url_for("/api"), headers=TOKEN)
    assert authorizations(httpserver) == [TOKEN["Authorization"]]
    assert elsewhere.log == []


def test_anonymous_follows_another_origin_without_the_token(httpserver, elsewhere):
    far = elsewhere.url_for("/page2")
    elsewhere.expect_request("/page2").respond_with_json({"results": [2], "next": None})
    httpserver.expect_request("/api").respond_with_json({"results": [1], "next": far})
    pages = fetch_json_pages(httpserver.url_for("/api"), headers=TOKEN, cross_origin="anonymous")
    assert [p["results"] for p in pages] == [[1], [2]]
    assert authorizations(httpserver) == [TOKEN["Authorization"]]
    assert authorizations(elsewhere) == [None]


def test_a_same_origin_next_link_keeps_the_token(httpserver):
    httpserver.expect_request("/api").respond_with_json({"results": [1], "next": "/api/2"})
    httpserver.expect_request("/api/2").respond_with_json({"results": [2], "next": None})
    assert len(fetch_json_pages(httpserver.url_for("/api"), headers=TOKEN)) == 2
    assert authorizations(httpserver) == [TOKEN["Authorization"]] * 2


@pytest.mark.parametrize("link", ["file:///etc/hostname", "/etc/passwd?x", "ftp://x/y"])
def test_a_remote_page_cannot_send_the_reader_to_a_local_file(httpserver, link, tmp_path):
    if link.startswith("/"):  # relative: resolves against the http page, so stays http
        httpserver.expect_request("/etc/passwd").respond_with_json({"next": None})
    httpserver.expect_request("/api").respond_with_json({"results": [], "next": link})
    if link.startswith("/"):
        assert len(fetch_json_pages(httpserver.url_for("/api"))) == 2
        return
    with pytest.raises(SourceError, match="a remote page may only link to http"):
        fetch_json_pages(httpserver.url_for("/api"))


def test_a_link_that_is_not_a_string_is_an_error(httpserver):
    httpserver.expect_request("/api").respond_with_json({"next": {"url": "x"}})
    with pytest.raises(SourceError, match="is not a link"):
        fetch_json_pages(httpserver.url_for("/api"))


def test_a_redirect_to_another_origin_drops_the_token(httpserver, elsewhere):
    elsewhere.expect_request("/landed").respond_with_json({"ok": True})
    redirect = Response(status=302, headers={"Location": elsewhere.url_for("/landed")})
    httpserver.expect_request("/api").respond_with_response(redirect)
    with Reader(headers=TOKEN, credential_origins=[httpserver.url_for("/")]) as reader:
        assert reader.json(httpserver.url_for("/api")) == {"ok": True}
    assert authorizations(httpserver) == [TOKEN["Authorization"]]
    assert authorizations(elsewhere) == [None]


def test_downloads_send_the_token_only_to_the_configured_origins(httpserver, elsewhere, tmp_path):
    httpserver.expect_request("/a.csv").respond_with_data("a\n")
    elsewhere.expect_request("/b.csv").respond_with_data("b\n")
    urls = [httpserver.url_for("/a.csv"), elsewhere.url_for("/b.csv")]
    download_files(urls, tmp_path, headers=TOKEN)
    # Both were configured, so both get it; a reader configured for one sends it to one.
    assert authorizations(httpserver) == authorizations(elsewhere) == [TOKEN["Authorization"]]
    with Reader(headers=TOKEN, credential_origins=urls[:1]) as reader:
        reader.read(urls[1])
    assert authorizations(elsewhere)[-1] is None


def test_origins_compare_scheme_host_and_port():
    assert origin("http://Example.com/x") == origin("http://example.com:80/y")
    assert origin("https://example.com/") != origin("http://example.com/")
    assert origin("http://example.com:8080/") != origin("http://example.com/")
