"""multi_host.py's pure parts, fast: the source's ETag answers and request counts on a
real loopback server, what counts as a temporary key, a file fetched twice, the report."""

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import multi_host  # from its folder: tools/integration is not a package


@pytest.fixture
def source(tmp_path) -> Iterator[str]:
    """The check's source server on 127.0.0.1, serving the check's own files."""
    multi_host.write_source_files(tmp_path / "files")
    (tmp_path / "secret.txt").write_text("outside the folder")
    server = multi_host.source_server(tmp_path / "files", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def test_a_file_is_sent_with_its_etag_then_not_modified_and_every_answer_counted(source):
    name = multi_host.CHAIN_FILES[0]
    first = get(f"{source}/{name}")
    assert first.status_code == 200 and first.headers["ETag"].startswith('"')
    again = get(f"{source}/{name}", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    changed = get(f"{source}/{name}", **{"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content
    counts = get(f"{source}/_counts").json()
    assert counts == {name: {"started": 3, "200": 2, "304": 1}}


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/.hidden", "/a/b"])
def test_nothing_outside_the_folder_is_served_or_counted(source, path):
    assert get(f"{source}{path}").status_code == 404
    assert get(f"{source}/_counts").json() == {}


def test_a_slow_file_drips_only_on_its_first_request(tmp_path):
    state = multi_host.SourceState(tmp_path)
    slow, plain = f"{multi_host.SLOW_PREFIX}x.csv", "x.csv"
    state.count(slow, "started")
    state.count(plain, "started")
    assert state.drips(slow) and not state.drips(plain)
    state.count(slow, "started")
    assert not state.drips(slow)


@given(st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), max_size=4))
def test_if_none_match_matches_exactly_the_listed_tags(others):
    etag = '"abc123"'
    listed = ", ".join(f'"{tag}"' for tag in others)
    assert multi_host.not_modified(listed, etag) == ("abc123" in others)
    assert multi_host.not_modified(f"{listed}, W/{etag}".lstrip(", "), etag)
    assert multi_host.not_modified("*", etag) and not multi_host.not_modified(None, etag)


def test_temporary_keys_are_the_writes_in_progress():
    keys = [
        "data/d/ingestion/feed/a.csv",
        "data/d/ingestion/feed/.a.csv.1f2e3d4c.part",
        "data/d/ingestion/feed/b.csv.tmp",
        "data/d/ingestion/feed/manifest.json",
        "data/d/.hidden/report.md",  # a dotted folder is not a write in progress
    ]
    assert multi_host.temporary_keys(keys) == keys[1:3]


def test_a_finished_file_sent_whole_twice_or_never_is_reported():
    counts = {"a.csv": {"200": 1, "304": 1}, "b.csv": {"200": 2}, "slow.csv": {"started": 1}}
    assert multi_host.refetched(counts, ["a.csv", "b.csv", "c.csv"]) == {"b.csv": 2, "c.csv": 0}


def test_the_timing_report_lists_every_phase_aligned():
    report = multi_host.timing_report({"server ready": 12.345, "ingestion on host-3": 3.0})
    assert report.splitlines() == [
        "timings (reported, not asserted):",
        "  server ready            12.3 s",
        "  ingestion on host-3      3.0 s",
    ]
