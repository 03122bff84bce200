"""Extract links from HTML with the standard library's tolerant parser."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse


@dataclass(frozen=True)
class Link:
    page: str
    url: str
    text: str


class _LinkParser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: list[tuple[str, list[str]]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base = urljoin(self.base, href)
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            if href and not href.startswith(("#", "javascript:", "mailto:")):
                self._open = []
                self.links.append((urljoin(self.base, href), self._open))

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
    site = urlparse(page_url).netloc
    seen: set[str] = set()
    links: list[Link] = []
    for url, text in parser.links:
        if url in seen or (same_site_only and urlparse(url).netloc != site):
            continue
        seen.add(url)
        links.append(Link(page_url, url, " ".join("".join(text).split())))
    return links
