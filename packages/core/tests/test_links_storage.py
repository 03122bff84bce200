import os

import pytest
from airnub_core import storage
from airnub_core.links import extract_links


def test_links_are_absolute_unique_and_skip_fragments():
    html = """<base href="/docs/"><a href="a.html">A <b>page</b></a>
    <a href="#top">top</a><a href="mailto:x@y">mail</a><a href="a.html">again</a>
    <a href="https://other.org/z">Z</a>"""
    links = extract_links(html, "https://site.org/index.html")
    assert [(link.url, link.text) for link in links] == [
        ("https://site.org/docs/a.html", "A page"),
        ("https://other.org/z", "Z"),
    ]
    same = extract_links(html, "https://site.org/index.html", same_site_only=True)
    assert [link.url for link in same] == ["https://site.org/docs/a.html"]


def test_data_root_defaults_to_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv(storage.DATA_ROOT_ENV)
    (tmp_path / "uv.lock").touch()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert storage.data_root() == tmp_path / "data"


def test_output_dir_uses_the_env_override(airnub_data_root):
    assert storage.output_dir("dept_x", "ingestion", "c") == airnub_data_root / "dept_x/ingestion/c"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        storage.write_json_atomic(target, {1j: "complex keys are not JSON"})
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_writes_leave_the_mode_a_plain_write_would(tmp_path):
    """mkstemp alone makes 0600: outputs would be unreadable to the group a plain write
    lets read them. A new file gets the umask's default; a rewrite keeps the old mode."""
    import os
    import stat

    from airnub_core.storage import write_text_atomic

    umask = os.umask(0o027)
    try:
        new = write_text_atomic(tmp_path / "new.txt", "x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        new.chmod(0o604)
        assert stat.S_IMODE(write_text_atomic(new, "y").stat().st_mode) == 0o604
    finally:
        os.umask(umask)
