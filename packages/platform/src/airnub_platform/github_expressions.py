"""GitHub Actions expressions (``${{ ... }}``), enough for this project's workflow.

The workflow's structural tests and ``bench/ci_minutes.py`` evaluate its ``if``s
with the outputs the real ``airnub affected`` writes, so both read the job graph
the same way. Status functions assume every needed job succeeded.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!(),])"
    r"|(?P<name>[A-Za-z_][\w-]*(?:\.[\w*-]+)*))"
)
FUNCTIONS = {
    "always": lambda: True,
    "success": lambda: True,
    "failure": lambda: False,
    "cancelled": lambda: False,
    "fromJson": json.loads,
    "toJSON": json.dumps,
}


def value(expression: str, context: dict[str, object]) -> Any:
    """What an expression evaluates to; names are looked up in ``context`` (dotted keys)."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    python, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot read the expression {text!r} at {text[position:]!r}")
        position = match.end()
        if match["str"]:
            python.append(repr(match["str"][1:-1].replace("''", "'")))
        elif match["num"]:
            python.append(match["num"])
        elif match["op"]:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(match["op"], match["op"]))
        elif text[position:].lstrip().startswith("("):
            python.append(f"F[{match['name']!r}]")
        elif match["name"] in ("true", "false", "null"):
            python.append({"true": "True", "false": "False", "null": "None"}[match["name"]])
        else:
            python.append(f"C.get({match['name']!r})")
    # Only the tokens above reach eval: literals, operators, and lookups in F and C.
    return eval("".join(python), {"F": FUNCTIONS, "C": context})


def truth(condition: str | bool | None, context: dict[str, object]) -> bool:
    """A job's or step's ``if``: missing means ``success()``, true here."""
    if condition is None or isinstance(condition, bool):
        return condition is not False
    return bool(value(condition, context))


def render(template: object, context: dict[str, object]) -> str:
    """A string with its ``${{ }}`` parts replaced, as GitHub renders env values."""

    def one(match: re.Match[str]) -> str:
        got = value(match[1], context)
        return "" if got is None else str(got).lower() if isinstance(got, bool) else str(got)

    return re.sub(r"\$\{\{(.*?)\}\}", one, str(template))
