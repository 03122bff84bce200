"""``airnub list --graph``: each department's data contracts as a Mermaid flowchart.

Nodes are categories, grouped by stage; an edge runs from the category that declares an
output to each category that declares it as an input, labelled with the file's name.
The graph is read from the inventory, so it is the code's own account, never a drawing
kept by hand. Every label is escaped: display names and file names are the user's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from airnub_core.inventory import Category, Department

# Mermaid's entity codes for what would end a quoted label, open markup or make it a
# Markdown string (a backtick); "<" also keeps MkDocs' snippets syntax out of the page.
_ESCAPES = str.maketrans(
    {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "`": "#96;", "&": "#38;"}
)
# A node id is the category's own name when that is a plain word (every valid one is).
_PLAIN = re.compile(r"\w+", re.ASCII)
# What Python-Markdown reads as a link, an image or an escape, in a title.
_MARKDOWN_LINKS = str.maketrans({"\\": "\\\\", "[": "\\[", "]": "\\]"})


def _text(text: str) -> str:
    """``text`` on one line, with nothing Mermaid or the page would read as syntax:
    user text (folder, file and display names) is only ever shown."""
    escaped = text.translate(_ESCAPES)
    return "".join(c if c.isprintable() else f"#{ord(c)};" for c in escaped)


def _prose(text: str) -> str:
    """``text`` as one line of Markdown prose that shows it as written."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return html.escape(shown, quote=False).translate(_MARKDOWN_LINKS)


def _label(text: str) -> str:
    return f'"{_text(text)}"'


def _node_id(stage: str, name: str) -> str:
    """A Mermaid id for a category: a folder named against the conventions (``a b``,
    ``a-b``, ``[x]``) still gets one that cannot end the statement."""
    if _PLAIN.fullmatch(name):
        return f"{stage}__{name}"
    return f"{stage}__x{name.encode('utf-8', 'surrogateescape').hex()}"


def _node(category: Category) -> str:
    assert category.identity.stage is not None
    return _node_id(category.identity.stage, category.name)


def mermaid(department: Department) -> str:
    """The department's contract graph, as the body of a ```` ```mermaid ```` block."""
    lines = ["flowchart LR", f"  %% {department.id}: {len(list(department.categories))} categories"]
    edges: list[str] = []
    for stage in department.stages:
        lines.append(f"  subgraph {stage.name}[{_label(stage.name)}]")
        for category in stage.categories:
            lines.append(f"    {_node(category)}[{_label(category.name)}]")
        lines.append("  end")
        for category in stage.categories:
            try:
                inputs, _ = category.contracts
            except Exception as error:  # `airnub check` reports why; the graph says so
                why = _text(f"{category.key}: contracts unreadable ({type(error).__name__})")
                lines.append(f"  %% {why}")
                continue
            for item in inputs:
                source = _node_id(item.stage, item.category)
                edges.append(f"  {source} -->|{_label(item.name)}| {_node(category)}")
    return "\n".join([*lines, *edges]) + "\n"


def markdown(departments: list[Department], unreadable: Mapping[str, str] | None = None) -> str:
    """Every department's graph under its display name, as Markdown; a department that
    could not be read (``unreadable``: id -> why) is a line saying so."""
    parts = []
    for department in departments:
        # check_display_name refuses "<", "&" and line breaks, but an installed package's
        # metadata is not checked: escaped anyway, and "[x](javascript:...)" is no link.
        title = f"### {_prose(department.display_name)} (`{department.id}`)"
        parts.append(f"{title}\n\n```mermaid\n{mermaid(department)}```\n")
    for department_id, why in (unreadable or {}).items():
        parts.append(f"### `{department_id}`\n\nNot drawn: {_prose(why)}\n")
    return "\n".join(parts) or "No departments are installed.\n"
