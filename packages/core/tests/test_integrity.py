"""Integrity is checked, not assumed: the manifest always describes what is on disk.

A loopback server serves files with ETags (a second run gets 304s); the tests then do
what a careless user, a failing source or a hostile editor would: flip a byte, delete a
file, drop a URL, 404 part-way, kill the run with a real SIGINT, edit the manifest."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest
from airnub_core.downloads import MANIFEST, download_files
from airnub_core.sources import SourceError
from airnub_core.storage import UnsafeOutputPath
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

NAMES = ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"]
FAST = {"timeout": 10.0, "retries": 0}  # a 404 is not retried anyway; keep failures quick


class Files:
    """What the loopback server holds: path -> bytes, served with a content ETag and a
    304 when the client's If-None-Match matches."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.content = {f"/{name}": f"{name} v1\n".encode() for name in NAMES}
        for path in self.content:
            server.expect_request(path).respond_with_handler(self.respond)

    def respond(self, request: Request) -> Response:
        body = self.content.get(request.path)
        if body is None:
            return Response("gone", status=404)
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, headers={"ETag": etag})

    def urls(self, names=NAMES) -> list[str]:
        return [self.server.url_for(f"/{name}") for name in names]

    def conditional(self) -> dict[str, bool]:
        """Per file, whether its last request asked If-None-Match."""
        return {r.path[1:]: "If-None-Match" in r.headers for r, _ in self.server.log}


@pytest.fixture
def files(httpserver) -> Files:
    return Files(httpserver)


@pytest.fixture
def folder(airnub_data_root) -> Path:
    return airnub_data_root / "dept_hostile" / "ingestion" / "feed"


def manifest(folder: Path) -> dict[str, dict]:
    return {row["file"]: row for row in json.loads((folder / MANIFEST).read_text())["files"]}


def assert_manifest_is_the_disk(
    folder: Path, strangers: AbstractSet[str] = frozenset()
) -> dict[str, dict]:
    """The manifest lists exactly the files on disk (besides ``strangers``, which it never
    knew), each with the sha256 and size of what is there."""
    listed = manifest(folder)
    on_disk = {p.name for p in folder.iterdir()} - {MANIFEST, *strangers}
    assert on_disk == set(listed)
    for name, row in listed.items():
        data = (folder / name).read_bytes()
        assert (row["sha256"], row["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    return listed


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_second_run_gets_304s_and_reports_unchanged(files, folder):
    assert {e.status for e in download_files(files.urls(), folder, **FAST)} == {"downloaded"}
    files.server.clear_log()
    assert {e.status for e in download_files(files.urls(), folder, **FAST)} == {"unchanged"}
    assert all(files.conditional().values())
    assert_manifest_is_the_disk(folder)


@pytest.mark.parametrize(
    "damage",
    [
        flip_a_byte,
        Path.unlink,
        lambda path: path.write_bytes(path.read_bytes()[:-1]),
        lambda path: path.write_bytes(path.read_bytes() + b"!"),
    ],
    ids=["flipped-byte", "deleted", "truncated", "appended"],
)
def test_a_damaged_copy_is_fetched_again_unconditionally_and_repaired(files, folder, damage):
    download_files(files.urls(), folder, **FAST)
    damage(folder / "c.csv")
    files.server.clear_log()
    statuses = {e.file: e.status for e in download_files(files.urls(), folder, **FAST)}
    assert statuses == {**dict.fromkeys(NAMES, "unchanged"), "c.csv": "repaired"}
    assert files.conditional()["c.csv"] is False  # the 304 was never asked for
    assert (folder / "c.csv").read_bytes() == b"c.csv v1\n"
    assert_manifest_is_the_disk(folder)


def test_a_local_copy_changed_with_the_same_size_and_mtime_is_repaired(tmp_path, folder):
    """For file sources the check is mtime + size of the source; the copy is hashed."""
    source = tmp_path / "source.txt"
    source.write_text("exact")
    download_files([str(source)], folder)
    copy = folder / "source.txt"
    stamp = copy.stat()
    copy.write_text("EXACT")
    os.utime(copy, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert download_files([str(source)], folder)[0].status == "repaired"
    assert copy.read_text() == "exact"


def test_a_dropped_url_takes_its_file_but_never_a_stranger(files, folder):
    download_files(files.urls(), folder, **FAST)
    (folder / "notes.txt").write_text("the manifest never knew me")
    download_files(files.urls(NAMES[:3]), folder, **FAST)
    assert sorted(manifest(folder)) == NAMES[:3]
    assert not (folder / "d.csv").exists() and not (folder / "e.csv").exists()
    assert (folder / "notes.txt").read_text() == "the manifest never knew me"
    assert_manifest_is_the_disk(folder, strangers={"notes.txt"})


def test_a_404_part_way_leaves_a_manifest_of_exactly_what_is_on_disk(files, folder):
    del files.content["/c.csv"]
    with pytest.raises(SourceError) as failed:
        download_files(files.urls(), folder, **FAST)
    assert str(failed.value) == f"{files.urls()[2]}: HTTP 404"
    assert sorted(assert_manifest_is_the_disk(folder)) == ["a.csv", "b.csv"]


def test_a_failed_rerun_keeps_intact_files_and_drops_damaged_ones(files, folder):
    download_files(files.urls(), folder, **FAST)
    flip_a_byte(folder / "d.csv")  # not reached again before the failure
    files.content["/a.csv"] = b"a.csv v2\n"
    del files.content["/c.csv"]
    with pytest.raises(SourceError, match=r"c\.csv: HTTP 404"):
        download_files(files.urls(), folder, **FAST)
    listed = assert_manifest_is_the_disk(folder)
    # a was fetched again, b checked, c (404) kept as it was intact, d damaged: gone, e intact.
    assert {name: row["status"] for name, row in listed.items()} == {
        "a.csv": "updated", "b.csv": "unchanged", "c.csv": "downloaded", "e.csv": "downloaded",
    }  # fmt: skip


def test_a_304_to_a_request_without_a_condition_writes_nothing(httpserver, folder):
    httpserver.expect_request("/x.csv").respond_with_data("", status=304)
    with pytest.raises(SourceError, match="answered 'not modified' to a request without"):
        download_files([httpserver.url_for("/x.csv")], folder, **FAST)
    assert manifest(folder) == {}
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]


def test_a_url_named_like_the_manifest_is_refused(httpserver, folder):
    with pytest.raises(SourceError, match=r"would be saved as manifest\.json"):
        download_files([httpserver.url_for("/manifest.json")], folder, **FAST)
    assert httpserver.log == []


@pytest.mark.parametrize(
    "hostile",
    ["../../victim.txt", "/tmp/victim.txt", "sub/a.csv", "", ".", "..", MANIFEST, "b.csv"],
)
def test_a_hostile_manifest_entry_is_refused_before_anything_happens(
    files, folder, tmp_path, hostile
):
    """An edited manifest must not steer deletes or reads outside its folder (or onto
    another entry's file): it is refused naming the manifest, and nothing is touched."""
    download_files(files.urls(["a.csv"]), folder, **FAST)
    victim = folder.parent.parent / "victim.txt"
    victim.write_text("precious")
    rows = json.loads((folder / MANIFEST).read_text())
    rows["files"][0]["file"] = hostile
    (folder / MANIFEST).write_text(json.dumps(rows))
    before = sorted(p.name for p in folder.iterdir())
    files.server.clear_log()
    with pytest.raises(SourceError) as refused:
        download_files(files.urls(["b.csv"]), folder, **FAST)  # a.csv would be dropped
    message = str(refused.value)
    assert message.startswith(f"{folder / MANIFEST}: refused, entry 1 names file")
    assert "\n" not in message and files.urls()[0] not in message
    assert files.server.log == []
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda row: row.update(sha256="not-a-hash"), "no valid sha256"),
        (lambda row: row.update(size=-1), "no valid size"),
        (lambda row: row.update(size="12"), "no valid size"),
        (lambda row: row.update(url=["x"]), "not text"),
        (lambda row: row.update(extra=1), "unreadable manifest"),
    ],
)
def test_malformed_manifest_fields_are_one_line_errors(files, folder, edit, complaint):
    download_files(files.urls(["a.csv"]), folder, **FAST)
    rows = json.loads((folder / MANIFEST).read_text())
    edit(rows["files"][0])
    (folder / MANIFEST).write_text(json.dumps(rows))
    with pytest.raises(SourceError, match=complaint) as refused:
        download_files(files.urls(["a.csv"]), folder, **FAST)
    assert str(refused.value).startswith(str(folder / MANIFEST))
    assert "\n" not in str(refused.value)


def test_a_duplicated_manifest_entry_is_refused(files, folder):
    download_files(files.urls(["a.csv"]), folder, **FAST)
    rows = json.loads((folder / MANIFEST).read_text())
    rows["files"].append(rows["files"][0])
    (folder / MANIFEST).write_text(json.dumps(rows))
    with pytest.raises(SourceError, match="two entries name the same file or URL"):
        download_files(files.urls(["a.csv"]), folder, **FAST)


def test_a_manifest_that_is_a_symlink_is_not_read(files, folder, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"files": []}')
    folder.mkdir(parents=True)
    (folder / MANIFEST).symlink_to(elsewhere)
    with pytest.raises(UnsafeOutputPath, match=r"manifest\.json: refused, it is a symlink"):
        download_files(files.urls(["a.csv"]), folder, **FAST)
    assert files.server.log == []


def test_a_symlink_planted_in_place_of_a_download_is_refused(files, folder, tmp_path):
    download_files(files.urls(["a.csv", "b.csv"]), folder, **FAST)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "a.csv").unlink()
    (folder / "a.csv").symlink_to(victim)
    with pytest.raises(UnsafeOutputPath, match=r"a\.csv: refused, it is a symlink"):
        download_files(files.urls(["a.csv", "b.csv"]), folder, **FAST)
    assert victim.read_text() == "precious"
    assert (folder / "a.csv").is_symlink()  # left for a person to look at, not removed
    assert sorted(manifest(folder)) == ["b.csv"]


def test_a_folder_in_place_of_a_download_or_the_manifest_is_a_one_line_error(files, folder):
    download_files(files.urls(["a.csv", "b.csv"]), folder, **FAST)
    (folder / "a.csv").unlink()
    (folder / "a.csv" / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as refused:
        download_files(files.urls(["a.csv", "b.csv"]), folder, **FAST)
    assert str(refused.value).endswith(f"a folder where a file should be: '{folder / 'a.csv'}'")
    assert (folder / "a.csv" / "inside").is_dir()
    assert sorted(manifest(folder)) == ["b.csv"]
    (folder / MANIFEST).unlink()
    (folder / MANIFEST).mkdir()
    with pytest.raises(IsADirectoryError, match=re.escape(str(folder / MANIFEST))):
        download_files(files.urls(["b.csv"]), folder, **FAST)


def test_a_category_folder_linked_outside_gets_no_download(files, folder, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder.parent.mkdir(parents=True)
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeOutputPath, match="outside the data root"):
        download_files(files.urls(["a.csv"]), folder, **FAST)
    assert list(elsewhere.iterdir()) == []
    assert files.server.log == []


RUN_DOWNLOADS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from airnub_core.downloads import download_files

    download_files(sys.argv[2:], Path(sys.argv[1]), timeout=60.0, retries=0)
""")


def test_a_run_stopped_by_sigint_part_way_leaves_a_true_manifest(folder, airnub_data_root):
    """A real SIGINT to a real process while the third download hangs on the server."""
    arrived, release = threading.Event(), threading.Event()

    def hang(request: Request) -> Response:
        arrived.set()
        release.wait(60)  # the test releases it as soon as the process is gone
        return Response("late\n")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        for name in ("a.csv", "b.csv"):
            server.expect_request(f"/{name}").respond_with_data(f"{name}\n")
        server.expect_request("/c.csv").respond_with_handler(hang)
        urls = [server.url_for(f"/{name}") for name in ("a.csv", "b.csv", "c.csv")]
        env = {**os.environ, "AIRNUB_DATA_ROOT": str(airnub_data_root)}
        process = subprocess.Popen([sys.executable, "-c", RUN_DOWNLOADS, str(folder), *urls],
                                   env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert arrived.wait(60), "the run never reached the third download"
            os.kill(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
            release.set()
    finally:
        server.clear()
        server.stop()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert sorted(assert_manifest_is_the_disk(folder)) == ["a.csv", "b.csv"]


# --- the property: whatever happens, the manifest is the disk ---------------------------

POOL = ["p.txt", "q.txt", "r.txt", "s.txt"]
runs = st.tuples(
    st.just("run"),
    st.lists(st.sampled_from(POOL), unique=True, max_size=len(POOL)),
    st.none() | st.integers(min_value=0, max_value=len(POOL)),  # where a missing source sits
)
damages = st.tuples(
    st.just("damage"), st.sampled_from(POOL), st.sampled_from(["flip", "delete", "grow"])
)
edits = st.tuples(st.just("edit"), st.sampled_from(POOL), st.just(None))


@settings(max_examples=30)
@given(st.lists(st.one_of(runs, damages, edits), min_size=1, max_size=8))
def test_after_any_runs_and_any_damage_the_manifest_is_the_disk(steps):
    with tempfile.TemporaryDirectory() as scratch:
        sources, folder = Path(scratch) / "sources", Path(scratch) / "copies"
        sources.mkdir()
        for name in POOL:
            (sources / name).write_text(f"{name} 0\n")
        folder.mkdir()
        (folder / "stranger.txt").write_text("never listed")
        for step in steps:
            apply(step, sources, folder)
            if (folder / MANIFEST).exists():
                assert_manifest_is_the_disk(folder, strangers={"stranger.txt"})
        assert (folder / "stranger.txt").read_text() == "never listed"


def apply(step, sources: Path, folder: Path) -> None:
    kind, subject, detail = step
    if kind == "edit":  # grows, so the source's size (and so its stamp) changes
        with (sources / subject).open("a") as handle:
            handle.write("more\n")
    elif kind == "damage" and (folder / subject).exists():
        damage_copy(folder / subject, detail)
    elif kind == "run":
        urls = [(sources / name).as_uri() for name in subject]
        if detail is not None:
            urls.insert(min(detail, len(urls)), (sources / "missing.txt").as_uri())
        try:
            download_files(urls, folder)
        except SourceError:
            assert detail is not None
            return
        assert detail is None
        for name in subject:  # a successful run leaves true copies of every source
            assert (folder / name).read_bytes() == (sources / name).read_bytes()


def damage_copy(path: Path, how: str) -> None:
    if how == "flip":
        flip_a_byte(path)
    elif how == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes() + b"x")


def test_a_file_name_with_a_control_character_is_refused(tmp_path):
    with pytest.raises(SourceError, match="cannot derive a file name"):
        download_files(["http://127.0.0.1:9/a%0Ab.csv"], tmp_path / "out", retries=0)


def test_a_manifest_nested_beyond_recursion_is_one_line(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SourceError, match="manifest") as error:
        download_files([(tmp_path / "a.csv").as_uri()], folder, retries=0)
    assert "\n" not in str(error.value)
