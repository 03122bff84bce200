"""HTTP against a real loopback server (pytest-httpserver); local files from tmp_path."""

import json
import time

import pytest
from airnub_core.sources import Reader, SourceError, TransientSourceError, fetch_json_pages
from werkzeug import Response


def test_retries_a_500_then_succeeds(httpserver):
    httpserver.expect_ordered_request("/data").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/data").respond_with_json({"ok": True})
    with Reader(retries=2, backoff=0.01) as reader:
        assert reader.json(httpserver.url_for("/data")) == {"ok": True}
    assert len(httpserver.log) == 2


def test_gives_up_after_the_retry_budget(httpserver):
    httpserver.expect_request("/data").respond_with_data("down", status=503)
    with (
        Reader(retries=2, backoff=0.01) as reader,
        pytest.raises(TransientSourceError, match="503"),
    ):
        reader.json(httpserver.url_for("/data"))
    assert len(httpserver.log) == 3


def test_client_errors_are_not_retried(httpserver):
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    with Reader(retries=3, backoff=0.01) as reader, pytest.raises(SourceError, match="HTTP 404"):
        reader.json(httpserver.url_for("/missing"))
    assert len(httpserver.log) == 1


def test_timeout_is_transient_and_names_the_url(httpserver):
    def slow(request):
        time.sleep(0.5)
        return Response("{}")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    url = httpserver.url_for("/slow")
    with Reader(timeout=0.1, retries=0) as reader, pytest.raises(TransientSourceError) as error:
        reader.json(url)
    assert url in str(error.value) and "timed out" in str(error.value)


def test_malformed_json_fails_at_once(httpserver):
    httpserver.expect_request("/bad").respond_with_data(
        "{not json", content_type="application/json"
    )
    with Reader(retries=3) as reader, pytest.raises(SourceError, match="malformed JSON"):
        reader.json(httpserver.url_for("/bad"))
    assert [r.path for r, _ in httpserver.log].count("/bad") == 1


def test_pagination_follows_relative_and_absolute_links(httpserver):
    httpserver.expect_request("/p1").respond_with_json({"items": [1], "next": "p2"})
    httpserver.expect_request("/p2").respond_with_json(
        {"items": [2], "next": httpserver.url_for("/p3")}
    )
    httpserver.expect_request("/p3").respond_with_json({"items": [3], "next": None})
    pages = fetch_json_pages(httpserver.url_for("/p1"))
    assert [p["items"] for p in pages] == [[1], [2], [3]]


def test_pagination_loop_is_an_error(httpserver):
    httpserver.expect_request("/p1").respond_with_json({"next": "p1"})
    with pytest.raises(SourceError, match="loops back"):
        fetch_json_pages(httpserver.url_for("/p1"))


def test_local_pages_by_path_and_file_url(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"n": 1, "next": "b.json"}))
    (tmp_path / "b.json").write_text(json.dumps({"n": 2}))
    assert [p["n"] for p in fetch_json_pages(str(tmp_path / "a.json"))] == [1, 2]
    assert [p["n"] for p in fetch_json_pages((tmp_path / "a.json").as_uri())] == [1, 2]


def test_missing_local_file_names_it(tmp_path):
    url = (tmp_path / "nope.json").as_uri()
    with pytest.raises(SourceError, match=f"{url}: file not found"):
        fetch_json_pages(url)


def test_unsupported_scheme():
    with Reader() as reader, pytest.raises(SourceError, match="unsupported scheme 'ftp'"):
        reader.read("ftp://example.org/x")


@pytest.mark.parametrize(
    "link",
    ["http://127.0.0.1:+18777/", "http://h:1:2/", "http://[::1/"],
)
def test_a_next_link_that_is_not_a_url_is_one_source_error(httpserver, link):
    httpserver.expect_request("/p1").respond_with_json({"items": [], "next": link})
    with Reader(retries=0) as reader, pytest.raises(SourceError) as error:
        list(reader.pages(httpserver.url_for("/p1")))
    assert "not a link" in str(error.value)


def test_not_modified_to_a_plain_request_is_an_error_not_an_empty_body(httpserver):
    httpserver.expect_request("/data").respond_with_data("", status=304)
    with (
        Reader(retries=0) as reader,
        pytest.raises(SourceError, match=r"answered 'not modified' to a request without"),
    ):
        reader.read(httpserver.url_for("/data"))
