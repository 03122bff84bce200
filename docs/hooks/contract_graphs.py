"""MkDocs hook: the contract graphs of the installed departments, drawn at build time.

A page holding ``<!-- airnub:contract-graphs -->`` gets ``airnub list --graph``'s Markdown
in its place, so the site shows what the code declares on the day it is built. Mermaid
blocks render in the browser (Material's built-in support); the fence is registered here
rather than in mkdocs.yml, whose YAML then needs no Python tag.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- airnub:contract-graphs -->"


def on_config(config: Any) -> Any:
    from pymdownx.superfences import fence_code_format

    fences = config["mdx_configs"].setdefault("pymdownx.superfences", {})
    fences.setdefault("custom_fences", []).append(
        {"name": "mermaid", "class": "mermaid", "format": fence_code_format}
    )
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from airnub_core import inventory
    from airnub_platform.graph import markdown as graphs

    # a department that cannot be read is a line on the page, not a failed build
    return markdown.replace(MARKER, graphs(*inventory.readable()))
