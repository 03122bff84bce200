"""A hostile page decides nothing: only web links come out, whatever the markup."""

from __future__ import annotations

from airnub_core.links import extract_links
from hypothesis import given
from hypothesis import strategies as st

PAGE = "https://site.org/dir/index.html"


def urls(html: str, page: str = PAGE, same_site_only: bool = False) -> list[str]:
    return [link.url for link in extract_links(html, page, same_site_only)]


def test_only_web_links_come_from_a_remote_page():
    html = """<a href="JAVASCRIPT:alert(1)">js</a><a href=" javascript:x">js2</a>
    <a href="file:///etc/passwd">local</a><a href="data:text/html,hi">data</a>
    <a href="ftp://site.org/x">ftp</a><a href="mailto:a@b">mail</a><a href="ok.html">ok</a>"""
    assert urls(html) == ["https://site.org/dir/ok.html"]


def test_a_base_cannot_switch_the_scheme():
    html = '<base href="file:///etc/"><a href="passwd">p</a>'
    assert urls(html) == ["https://site.org/dir/passwd"]


def test_a_malformed_href_is_skipped_not_fatal():
    html = (
        '<a href="http://[::1">bad</a><a href="http://site.org:99999/x">port</a><a href="/y">y</a>'
    )
    assert urls(html) == ["https://site.org/y"]


def test_text_after_a_refused_link_belongs_to_no_link():
    html = '<a href="/a">A</a><a href="javascript:x">evil</a> tail'
    assert [link.text for link in extract_links(html, PAGE)] == ["A"]


def test_same_site_ignores_host_case_and_a_written_default_port_but_not_another_port():
    html = (
        '<a href="https://SITE.org/a">a</a><a href="https://site.org:8443/b">b</a>'
        '<a href="https://site.org:443/c">c</a>'
    )
    assert urls(html, same_site_only=True) == ["https://SITE.org/a", "https://site.org:443/c"]


def test_a_local_sample_page_may_link_local_files(tmp_path):
    page = (tmp_path / "index.html").as_uri()
    assert urls('<a href="other.html">o</a>', page) == [(tmp_path / "other.html").as_uri()]


tags = st.sampled_from(["a", "base", "A", "p", "div", "a href", "img"])
hrefs = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["javascript:x", "file:///etc/passwd", "http://[::1", "//evil.org/x",
                     "https://site.org:0/", "\\\\evil\\x", "data:,x", "#frag", "?q=1"]),
)  # fmt: skip


@given(
    st.lists(st.tuples(tags, hrefs, st.text(max_size=10)), max_size=8),
    st.text(max_size=40),
    st.booleans(),
)
def test_any_markup_yields_only_unique_absolute_web_links(parts, noise, same_site):
    html = noise + "".join(f'<{tag}="{href}">{text}</{tag}>' for tag, href, text in parts)
    html += "".join(f"<{tag} href='{href}'>{text}" for tag, href, text in parts)
    found = urls(html, same_site_only=same_site)
    assert len(found) == len(set(found))
    for url in found:
        assert url.startswith(("http://", "https://")), url
        if same_site:
            assert url.split("/")[2].lower().startswith("site.org"), url


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(html):
    for link in extract_links(html, PAGE):
        assert link.url.startswith(("http://", "https://"))
