"""The one source of what new departments, categories and tasks start as: the Jinja2
templates beside this module, and the renderer for them.

The generators (``tools/generators``) render them into a workspace; the test plugin
(:mod:`airnub_platform.testing`) renders the same stage orchestrator, and its demo
category, into throwaway departments. They ship inside the platform package because the
plugin is installed where ``tools/`` is not.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from airnub_core import conventions
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The line a category flow template carries where `add_task --with-config` wires a task in.
TASKS_MARKER = "# airnub: tasks run here"


def _camel(value: str) -> str:
    return "".join(word.capitalize() for word in value.split("_"))


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        autoescape=False,
    )
    # JSON strings are valid TOML basic strings, YAML double-quoted scalars and Python
    # string literals alike.
    env.filters["quoted"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["title"] = conventions.humanize
    env.filters["camel"] = _camel
    env.globals["tasks_marker"] = TASKS_MARKER
    return env


def render(name: str, **context: object) -> str:
    """The template ``name`` (a path below ``templates/``) rendered with ``context``."""
    return _environment().get_template(name).render(**context)
