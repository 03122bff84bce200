"""The data root cannot be escaped: symlinks below it that lead outside are refused, and
an output's own name is never written through a symlink. Real folders and real symlinks;
the root itself may be a symlink."""

import os
from pathlib import Path

import pytest
from airnub_core import storage
from airnub_core.flows import data_dir
from airnub_core.storage import UnsafeOutputPath, output_dir, write_text_atomic

CATEGORY_MODULE = "dept_hostile.ingestion.feed.make_feed_flow_dept_hostile"


@pytest.fixture
def elsewhere(tmp_path):
    """A folder outside the data root that nothing may be written into."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def category_linked_to(root, target):
    """``<root>/dept_hostile/ingestion/feed`` as a symlink to ``target``."""
    (root / "dept_hostile" / "ingestion").mkdir(parents=True, exist_ok=True)
    link = root / "dept_hostile" / "ingestion" / "feed"
    link.symlink_to(target, target_is_directory=True)
    return link


def test_a_category_folder_linked_outside_is_refused(airnub_data_root, elsewhere):
    link = category_linked_to(airnub_data_root, elsewhere)
    with pytest.raises(UnsafeOutputPath) as refused:
        data_dir(CATEGORY_MODULE)
    assert str(refused.value) == (
        f"{link}: refused, it is a symlink to {elsewhere}, outside the data root {airnub_data_root}"
    )
    with pytest.raises(UnsafeOutputPath) as refused:
        write_text_atomic(link / "out.txt", "x")
    assert str(refused.value) == (
        f"{link / 'out.txt'}: refused, {link} is a symlink to {elsewhere},"
        f" outside the data root {airnub_data_root}"
    )
    assert list(elsewhere.iterdir()) == []


def test_a_folder_swapped_for_a_link_after_it_was_checked_is_refused_at_the_write(
    airnub_data_root, elsewhere
):
    """output_dir() checked a real folder; the writer walks again, so the swap is caught."""
    folder = data_dir(CATEGORY_MODULE)
    folder.rmdir()
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeOutputPath, match="is a symlink to"):
        write_text_atomic(folder / "out.txt", "x")
    assert list(elsewhere.iterdir()) == []


def test_a_department_folder_linked_outside_is_refused(airnub_data_root, elsewhere):
    airnub_data_root.mkdir()
    (airnub_data_root / "dept_hostile").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafeOutputPath, match=r"dept_hostile is a symlink to"):
        data_dir(CATEGORY_MODULE)
    assert list(elsewhere.iterdir()) == []


def test_a_dangling_link_outside_creates_nothing_there(airnub_data_root, tmp_path):
    missing = tmp_path / "not-yet"
    link = category_linked_to(airnub_data_root, missing)
    with pytest.raises(UnsafeOutputPath, match="outside the data root"):
        write_text_atomic(link / "x.txt", "x")
    assert not missing.exists()


def test_an_output_file_that_is_a_symlink_is_never_written_through(airnub_data_root, elsewhere):
    victim = elsewhere / "victim.txt"
    victim.write_text("precious")
    folder = data_dir(CATEGORY_MODULE)
    (folder / "out.txt").symlink_to(victim)
    with pytest.raises(UnsafeOutputPath) as refused:
        write_text_atomic(folder / "out.txt", "overwritten")
    assert str(refused.value) == (
        f"{folder / 'out.txt'}: refused, it is a symlink (to {victim});"
        " an output is never written through a symlink"
    )
    assert victim.read_text() == "precious"
    assert (folder / "out.txt").is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ["out.txt"]  # no temporary file left


def test_an_output_file_symlink_outside_the_root_is_refused_too(tmp_path, elsewhere):
    victim = elsewhere / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link.txt").symlink_to(victim)
    with pytest.raises(UnsafeOutputPath, match="never written through a symlink"):
        storage.write_bytes_atomic(tmp_path / "link.txt", b"x")
    assert victim.read_text() == "precious"


def test_dot_dot_and_absolute_parts_cannot_leave_the_root(airnub_data_root, tmp_path):
    with pytest.raises(UnsafeOutputPath, match=r"'\.\.' would climb out of the data root"):
        output_dir("dept_hostile", "..", "..", "escaped")
    with pytest.raises(UnsafeOutputPath, match="is outside the data root"):
        output_dir("dept_hostile", str(tmp_path / "escaped"))
    with pytest.raises(UnsafeOutputPath, match=r"'\.\.' would climb out"):
        data_dir(CATEGORY_MODULE, stage="ingestion", category="../../../escaped")
    with pytest.raises(UnsafeOutputPath, match=r"'\.\.' would climb out"):
        write_text_atomic(airnub_data_root / "dept_hostile" / ".." / ".." / "escaped.txt", "x")
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_a_symlinked_data_root_is_allowed(tmp_path, monkeypatch):
    real = tmp_path / "real-root"
    real.mkdir()
    (tmp_path / "root-link").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv(storage.DATA_ROOT_ENV, str(tmp_path / "root-link"))
    path = write_text_atomic(data_dir(CATEGORY_MODULE) / "out.txt", "kept")
    assert (real / "dept_hostile" / "ingestion" / "feed" / "out.txt").read_text() == "kept"
    # Written as the unresolved link, the path is still known to be in the root.
    linked = tmp_path / "root-link" / "dept_hostile" / "ingestion" / "feed" / "again.txt"
    write_text_atomic(linked, "too")
    assert (path.parent / "again.txt").read_text() == "too"


def test_the_default_data_root_may_be_a_symlink(tmp_path, monkeypatch):
    monkeypatch.delenv(storage.DATA_ROOT_ENV)
    (tmp_path / "uv.lock").touch()
    (tmp_path / "big-disk").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "big-disk", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    write_text_atomic(data_dir(CATEGORY_MODULE) / "out.txt", "x")
    assert (tmp_path / "big-disk" / "dept_hostile" / "ingestion" / "feed" / "out.txt").exists()


def test_a_symlink_that_stays_inside_the_root_is_followed(airnub_data_root):
    real = output_dir("dept_hostile", "ingestion", "feed-2024")
    category_linked_to(airnub_data_root, real)
    write_text_atomic(data_dir(CATEGORY_MODULE) / "out.txt", "inside")
    assert (real / "out.txt").read_text() == "inside"


def test_a_symlink_loop_is_refused_not_followed_forever(airnub_data_root):
    (airnub_data_root / "dept_hostile" / "ingestion").mkdir(parents=True)
    (airnub_data_root / "dept_hostile" / "ingestion" / "feed").symlink_to("feed")
    with pytest.raises(UnsafeOutputPath):
        data_dir(CATEGORY_MODULE)


def test_a_file_where_a_folder_should_be_is_a_one_line_error(airnub_data_root):
    (airnub_data_root / "dept_hostile").mkdir(parents=True)
    (airnub_data_root / "dept_hostile" / "ingestion").write_text("not a folder")
    with pytest.raises(NotADirectoryError) as refused:
        data_dir(CATEGORY_MODULE)
    assert str(airnub_data_root / "dept_hostile" / "ingestion") in str(refused.value)


def test_reading_and_removing_never_follow_the_final_symlink(airnub_data_root, elsewhere):
    victim = elsewhere / "victim.txt"
    victim.write_text("precious")
    link = data_dir(CATEGORY_MODULE) / "out.txt"
    link.symlink_to(victim)
    with pytest.raises(UnsafeOutputPath, match="is a symlink"), storage.open_output(link):
        pass
    assert storage.remove_output(link) is False
    assert link.is_symlink() and victim.read_text() == "precious"


def test_writes_keep_working_where_no_link_is_involved(airnub_data_root):
    path = write_text_atomic(data_dir(CATEGORY_MODULE) / "out.txt", "one")
    write_text_atomic(path, "two")
    with storage.open_output(path) as handle:
        assert handle.read() == b"two"
    assert storage.remove_output(path) is True
    assert os.listdir(Path(str(path.parent))) == []


def test_a_fifo_planted_at_an_output_name_is_refused_not_waited_on(airnub_data_root):
    fifo = Path(str(data_dir(CATEGORY_MODULE))) / "out.txt"
    os.mkfifo(fifo)
    holder = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # so no open() here can block
    try:
        with pytest.raises(UnsafeOutputPath, match="not a regular file"), storage.open_output(fifo):
            pass
        assert storage.remove_output(fifo) is False
        write_text_atomic(fifo, "a file again")  # replaces the FIFO, never writes into it
        assert fifo.read_text() == "a file again"
    finally:
        os.close(holder)


@pytest.mark.parametrize("value", ["file:///srv/data", "/srv/data", "relative/data"])
def test_local_paths_and_file_urls_are_still_roots(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = tmp_path / value if not value.startswith(("/", "file:")) else Path("/srv/data")
    assert Path(storage.local_path_of(value)) == expected.resolve()
