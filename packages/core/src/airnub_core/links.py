"""Extract links from HTML with the standard library's tolerant parser.

A page is remote content, so it never decides what counts as a link: only ``http(s)``
links are kept (a local sample page may also list ``file:`` links), a ``<base>`` that
would switch scheme is ignored, and an ``href`` that does not parse as a URL is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

from airnub_core.sources import is_http, origin

WEB_SCHEMES = frozenset({"http", "https"})


def _absolute(base: str, href: str) -> str | None:
    """``href`` made absolute against ``base``, or None when it is not a URL at all."""
    try:
        url = urljoin(base, href.strip())
        urlparse(url).port  # noqa: B018 -- raises on a malformed host or port
    except ValueError:
        return None
    return url


def _allowed(page: str, url: str) -> bool:
    scheme = urlparse(url).scheme
    return scheme in WEB_SCHEMES or (not is_http(page) and scheme == urlparse(page).scheme)


@dataclass(frozen=True)
class Link:
    page: str
    url: str
    text: str


class _LinkParser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = self.base = base
        self.links: list[tuple[str, list[str]]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "base"):
            return
        href = (dict(attrs).get("href") or "").strip()
        url = _absolute(self.base, href) if href else None
        if tag == "base":
            if url and urlparse(url).scheme == urlparse(self.base).scheme:
                self.base = url
            return
        self._open = None  # text after a refused <a> belongs to no link
        if url and not href.startswith("#") and _allowed(self.page, url):
            self._open = []
            self.links.append((url, self._open))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)


def extract_links(html: str, page_url: str, same_site_only: bool = False) -> list[Link]:
    """Absolute links of a page in document order, each URL once."""
    parser = _LinkParser(page_url)
    parser.feed(html)
    parser.close()
    site = _site(page_url)
    seen: set[str] = set()
    links: list[Link] = []
    for url, text in parser.links:
        if url in seen or (same_site_only and _site(url) != site):
            continue
        seen.add(url)
        links.append(Link(page_url, url, " ".join("".join(text).split())))
    return links


def _site(url: str) -> str:
    """Scheme, host and port, the default port made explicit (``https://Site.org:443``
    is ``https://site.org``)."""
    return origin(url)
