"""The data root in object storage: a real S3-compatible server (moto) on loopback."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import s3fs
from airnub_core import storage
from airnub_core.downloads import MANIFEST, download_files, load_manifest
from airnub_core.storage import UnsafeOutputPath, UnsupportedDataRoot
from werkzeug import Response

CATEGORY = ("dept_x", "ingestion", "feed")


def bucket_keys(root) -> list[str]:
    """Every object below ``root``, as keys relative to it (read with a fresh client)."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    return sorted(key.removeprefix(f"{root.path}/") for key in fs.find(root.path))


def test_outputs_are_written_read_and_removed_in_the_bucket(s3_data_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = storage.output_dir(*CATEGORY)
    assert str(folder) == f"{s3_data_root}/dept_x/ingestion/feed"
    table = storage.write_csv_atomic(folder / "t.csv", [{"a": "1"}], ["a"])
    notes = storage.write_json_atomic(folder / "sub" / "n.json", {"k": [1]})
    assert storage.read_csv(table) == [{"a": "1"}]
    with storage.open_output(notes) as handle:
        assert json.loads(handle.read()) == {"k": [1]}
    assert storage.holds_content(folder / "sub") and storage.holds_content(table)
    assert not storage.holds_content(folder / "nothing")
    assert storage.folder_stats([str(table), str(notes), str(folder / "gone")])["files"] == 2
    assert storage.output_digest(table) == (4, storage.output_digest(table)[1])  # type: ignore[index]
    assert bucket_keys(s3_data_root) == ["dept_x/ingestion/feed/sub/n.json",
                                         "dept_x/ingestion/feed/t.csv"]  # fmt: skip
    assert storage.remove_output(table) is True and storage.remove_output(table) is False
    with pytest.raises(FileNotFoundError):
        storage.read_csv(table)
    assert list(tmp_path.iterdir()) == []  # nothing local, no folder named "s3:"


@pytest.mark.parametrize(
    "parts", [("dept_x", "..", "y"), ("dept_x", "a//b"), ("dept_x", "./a"), ("dept_x", "")]
)
def test_an_output_path_that_is_not_plain_is_refused_in_the_bucket(s3_data_root, parts):
    with pytest.raises(UnsafeOutputPath, match="not a plain path"):
        storage.output_dir(*parts)


def test_a_result_path_outside_the_root_is_not_followed(s3_data_root):
    with pytest.raises(UnsafeOutputPath, match="not below the data root"):
        storage.located("s3://another-bucket/root/x.csv")
    with pytest.raises(UnsafeOutputPath, match="not a plain path"):
        storage.located(f"{s3_data_root}/a/../../escape")


def test_downloads_into_the_bucket_keep_the_manifest_rules(s3_data_root, httpserver):
    httpserver.expect_request("/a.csv").respond_with_data("a\n1\n", headers={"ETag": '"v1"'})
    url = httpserver.url_for("/a.csv")
    folder = storage.output_dir(*CATEGORY)
    assert [e.status for e in download_files([url], folder)] == ["downloaded"]

    def conditional(request):
        assert request.headers.get("If-None-Match") == '"v1"'
        return Response(status=304)

    httpserver.clear()
    httpserver.expect_request("/a.csv").respond_with_handler(conditional)
    assert [e.status for e in download_files([url], folder)] == ["unchanged"]
    # The copy in the bucket altered behind the manifest's back: fetched again, repaired.
    storage.write_text_atomic(folder / "a.csv", "tampered")
    httpserver.clear()
    httpserver.expect_request("/a.csv").respond_with_data("a\n1\n", headers={"ETag": '"v1"'})
    assert [e.status for e in download_files([url], folder)] == ["repaired"]
    entry = load_manifest(folder)[url]
    assert storage.output_digest(folder / "a.csv") == (entry.size, entry.sha256)
    assert bucket_keys(s3_data_root) == [f"dept_x/ingestion/feed/{n}" for n in ("a.csv", MANIFEST)]


KILLED_DOWNLOAD = """
import sys
from airnub_core import storage
from airnub_core.downloads import download_files
download_files(sys.argv[1:], storage.output_dir("dept_x", "ingestion", "feed"), deadline=120)
"""


def test_a_download_killed_mid_run_is_resumed_without_fetching_a_finished_file_twice(
    s3_data_root, httpserver
):
    """A lost host: the process is SIGKILLed while the second file hangs. The first file
    and a manifest listing it are in the bucket, whole; the rerun asks for it
    conditionally and downloads it no second time."""
    served: list[str] = []
    release = threading.Event()

    def first(request):
        served.append(request.headers.get("If-None-Match") or "body")
        if request.headers.get("If-None-Match") == '"one"':
            return Response(status=304)
        return Response("first\n", headers={"ETag": '"one"'})

    def second(request):
        release.wait(30)  # hangs until the test lets go (after the kill)
        return Response("second\n", headers={"ETag": '"two"'})

    httpserver.expect_request("/one.csv").respond_with_handler(first)
    httpserver.expect_request("/two.csv").respond_with_handler(second)
    urls = [httpserver.url_for("/one.csv"), httpserver.url_for("/two.csv")]
    folder = storage.output_dir(*CATEGORY)
    child = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, *urls])
    try:
        deadline = time.monotonic() + 60
        while url_listed(folder, urls[0]) is False:
            assert child.poll() is None and time.monotonic() < deadline, "no checkpoint seen"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        release.set()
        if child.poll() is None:
            child.kill()
    assert bucket_keys(s3_data_root) == [
        f"dept_x/ingestion/feed/{n}" for n in (MANIFEST, "one.csv")
    ]
    rerun = download_files(urls, folder)
    assert [e.status for e in rerun] == ["unchanged", "downloaded"]
    assert served == ["body", '"one"']  # the finished file's body was sent once


def url_listed(folder, url: str) -> bool:
    try:
        return url in load_manifest(folder)
    except Exception:  # mid-write by the other process: not yet
        return False


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://example.org/data", "http:// is not a data root"),
        ("memory://x", "memory:// is not a data root"),
        ("s3:///no-bucket", "names no bucket"),
        ("s3://user:hunter2@bucket/root", "carries a user, password"),
        ("s3://bucket/root?X-Amz-Signature=hunter2", "carries a user, password"),
        ("s3://bucket/a/../b", "'..'"),
        ("gs://bucket/root", "install airnub-core[gcs]"),
        # naming anything but plain keys: fsspec takes keys literally
        ("s3://bucket//x", "not plain key segments"),  # a key with an empty segment
        ("s3://bucket/.", "not plain key segments"),
        ("s3://bucket/a/./b", "not plain key segments"),
        ("s3://bucket/%2e%2e/x", "not plain key segments"),  # fsspec would not decode it
        ("s3://bucket/a%2Fb", "not plain key segments"),
        ("s3://bucket/root\tx", "spaces or control characters"),  # urlparse drops the tab
        ("s3://bucket/root\n", "spaces or control characters"),
        (" s3://bucket/root", "spaces or control characters"),
        ("s3://bucket:9000/root", "not a bucket name"),
        ("s3://bucket%2Fother/root", "not a bucket name"),
        ("s3://bu\\cket/root", "not a bucket name"),
        ("s3://:hunter2@bucket/root", "carries a user, password"),
        ("s3://@bucket/root", "carries a user, password"),
    ],
)
def test_a_root_that_cannot_be_used_is_refused_in_one_line_without_its_secret(
    url, says, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(storage.DATA_ROOT_ENV, url)
    with pytest.raises(UnsupportedDataRoot) as refused:
        storage.output_dir(*CATEGORY)
    message = str(refused.value)
    assert message.startswith(f"{storage.DATA_ROOT_ENV}: ") and says in message
    assert "\n" not in message and "hunter2" not in message
    assert list(tmp_path.iterdir()) == []


def test_credentials_in_a_blocks_settings_are_refused():
    from airnub_core.object_storage import remote_root

    settings = {"client_kwargs": {"endpoint_url": "http://x", "aws_secret_access_key": "s"}}
    with pytest.raises(UnsupportedDataRoot, match=r"client_kwargs\.aws_secret_access_key"):
        remote_root("s3://b/r", "the block", settings)


def test_block_credentials_go_only_to_the_endpoint_named_with_them(monkeypatch):
    from airnub_core.object_storage import remote_root

    keys = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": "http://good:9000"}}
    root = remote_root("s3://b/r", "here", {"client_kwargs": {"endpoint_url": "http://good:9000"}},
                       keys)  # fmt: skip
    assert root.storage_options["client_kwargs"]["endpoint_url"] == "http://good:9000"
    with pytest.raises(UnsupportedDataRoot, match="differs from the one its credentials"):
        remote_root("s3://b/r", "here", {"endpoint_url": "http://evil:9000"}, keys)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://evil:9000")
    with pytest.raises(UnsupportedDataRoot, match=r"\$AWS_ENDPOINT_URL would send its keys"):
        remote_root("s3://b/r", "here", None, {"key": "k", "secret": "s"})


def test_a_local_root_is_still_a_local_path(monkeypatch, tmp_path):
    monkeypatch.setenv(storage.DATA_ROOT_ENV, (tmp_path / "d").as_uri())
    assert storage.data_root() == Path(tmp_path / "d")


def test_an_s3_endpoint_that_never_answers_ends_in_an_error_not_a_hang(monkeypatch):
    """A hostile endpoint accepts the connection and then says nothing. Each request has a
    read deadline (30 s by default; a block's settings may shorten it), and each operation
    a deadline as a whole (300 s; 3 here), which ends even the PUT that waits, with no
    timeout of its own, for the server's "100 Continue"."""
    import socket

    from airnub_core import object_storage
    from airnub_core.object_storage import remote_root

    monkeypatch.setattr(object_storage, "OPERATION_DEADLINE", 3.0)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    silent = threading.Thread(target=accept_and_stay_silent, daemon=True)
    silent.start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = {
        "client_kwargs": {"endpoint_url": endpoint},
        "config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}},
        "anon": True,  # unsigned: no keys needed to be refused
    }
    try:
        root = remote_root("s3://bucket/root", "test", settings)
        with pytest.raises(TimeoutError, match=r"x\.txt: object storage did not answer within 3 s"):
            storage.write_text_atomic(root / "x.txt", "never stored")
        with pytest.raises(Exception, match=r"(?i)timeout|timed out|did not answer"):
            storage.read_csv(root / "x.csv")
    finally:
        stop.set()
        silent.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()
