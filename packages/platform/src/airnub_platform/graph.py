"""``airnub list --graph``: each department's data contracts as a Mermaid flowchart.

Nodes are categories, grouped by stage; an edge runs from the category that declares an
output to each category that declares it as an input, labelled with the file's name.
The graph is read from the inventory, so it is the code's own account, never a drawing
kept by hand. Every label is escaped: display names and file names are the user's.
"""

from __future__ import annotations

from airnub_core.inventory import Category, Department

# Mermaid's entity codes for what would end a quoted label or open markup.
_ESCAPES = str.maketrans({'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"})


def _label(text: str) -> str:
    return f'"{text.translate(_ESCAPES)}"'


def _node(category: Category) -> str:
    return f"{category.identity.stage}__{category.name}"


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
                lines.append(f"  %% {category.key}: contracts unreadable ({type(error).__name__})")
                continue
            for item in inputs:
                source = f"{item.stage}__{item.category}"
                edges.append(f"  {source} -->|{_label(item.name)}| {_node(category)}")
    return "\n".join([*lines, *edges]) + "\n"


def markdown(departments: list[Department]) -> str:
    """Every department's graph under its display name, as Markdown."""
    parts = []
    for department in departments:
        # a display name holds no "<", ">" or line break (conventions.check_display_name)
        title = f"### {department.display_name} (`{department.id}`)"
        parts.append(f"{title}\n\n```mermaid\n{mermaid(department)}```\n")
    return "\n".join(parts) or "No departments are installed.\n"
