import json
import os

import pytest
from airnub_core.downloads import MANIFEST, download_files
from airnub_core.sources import SourceError


def statuses(folder):
    return {f["file"]: f["status"] for f in json.loads((folder / MANIFEST).read_text())["files"]}


def test_local_files_are_skipped_when_unchanged(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.csv").write_text("a\n1\n")
    (src / "b.txt").write_text("hello")
    out = tmp_path / "out"
    urls = [str(src / "a.csv"), (src / "b.txt").as_uri()]

    first = download_files(urls, out)
    assert [e.status for e in first] == ["downloaded", "downloaded"]
    assert (out / "a.csv").read_text() == "a\n1\n"

    (src / "b.txt").write_text("hello, again")
    second = download_files(urls, out)
    assert statuses(out) == {"a.csv": "unchanged", "b.txt": "updated"}
    assert second[1].sha256 != first[1].sha256
    assert (out / "b.txt").read_text() == "hello, again"


def test_same_content_with_new_mtime_is_not_rewritten(tmp_path):
    (tmp_path / "a.txt").write_text("same")
    out = tmp_path / "out"
    download_files([str(tmp_path / "a.txt")], out)
    written = (out / "a.txt").stat().st_mtime_ns
    os.utime(tmp_path / "a.txt", (1, 1))
    assert download_files([str(tmp_path / "a.txt")], out)[0].status == "unchanged"
    assert (out / "a.txt").stat().st_mtime_ns == written


def test_http_etag_gives_a_304_skip(httpserver, tmp_path):
    httpserver.expect_request("/f.csv", headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/f.csv").respond_with_data("x,y\n", headers={"ETag": '"v1"'})
    url = httpserver.url_for("/f.csv")
    assert download_files([url], tmp_path)[0].status == "downloaded"
    assert download_files([url], tmp_path)[0].status == "unchanged"
    assert httpserver.log[1][0].headers["If-None-Match"] == '"v1"'


def test_a_failure_leaves_a_manifest_of_what_is_on_disk(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    out = tmp_path / "out"
    download_files([str(tmp_path / "a.txt")], out)
    before = json.loads((out / MANIFEST).read_text())["files"]
    with pytest.raises(SourceError, match=r"missing\.txt: file not found"):
        download_files([str(tmp_path / "a.txt"), str(tmp_path / "missing.txt")], out)
    after = json.loads((out / MANIFEST).read_text())["files"]
    assert [(f["file"], f["sha256"]) for f in after] == [(f["file"], f["sha256"]) for f in before]


def test_duplicate_file_names_are_refused(tmp_path):
    with pytest.raises(SourceError, match=r"two files would be saved as a\.txt"):
        download_files([str(tmp_path / "x" / "a.txt"), str(tmp_path / "y" / "a.txt")], tmp_path)
