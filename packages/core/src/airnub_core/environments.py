"""Environments, declared once, in the workspace root's ``pyproject.toml``::

    [tool.airnub]
    environments = ["local", "staging", "prod"]

An environment names the config overlays ``<name>.<env>.yaml`` that apply. Every
command that takes one (``AIRNUB_ENV``, ``--env``) and every reader of overlays asks
:func:`check_environment`, so ``check``, ``variables sync``, ``deploy`` and ``run``
agree on which environments and overlays exist. A name is id-like and short, never a
path. Outside a workspace (an installed worker) only the form is checked: ``deploy``
checked membership when it wrote the deployment's ``AIRNUB_ENV``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from airnub_core.config import DEFAULT_ENV, ConfigError

NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
TABLE = "[tool.airnub] environments"
SHOWN_CHARS = 40  # of a hostile name, quoted in an error


class EnvironmentsError(ConfigError):
    """An environment name, or the declaration of environments, is not valid."""


def _shown(value: object) -> str:
    text = repr(value)  # repr escapes newlines and control characters: one line
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."


def check_name(name: str, where: str) -> str:
    """``name`` if it has the form of an environment name; raises naming ``where``."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise EnvironmentsError(
            f"{where}: {_shown(name)} is not an environment name (lowercase letters, digits,"
            " '-' and '_', starting with a letter, at most 32 characters)"
        )
    return name


def declared_environments(root: Path) -> list[str]:
    """The environments ``root/pyproject.toml`` declares; ``["local"]`` without the table."""
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [DEFAULT_ENV]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise EnvironmentsError(f"{path}: cannot read {TABLE}: {reason}") from None
    tool = data.get("tool")
    table = tool.get("airnub") if isinstance(tool, dict) else None
    if table is None:
        return [DEFAULT_ENV]
    names = table.get("environments") if isinstance(table, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise EnvironmentsError(
            f'{path}: {TABLE} must be a list of names, e.g. ["{DEFAULT_ENV}", "prod"]'
        )
    for name in names:
        check_name(name, f"{path}: {TABLE}")
    if DEFAULT_ENV not in names:
        raise EnvironmentsError(
            f"{path}: {TABLE} must include {DEFAULT_ENV!r}, the environment when none is given"
        )
    return names


def check_environment(name: str, where: str, root: Path | None) -> str:
    """``name`` if it is an environment ``root`` declares; raises one line naming ``where``.

    ``root`` is the workspace root; None (an installed worker) checks only the form.
    """
    check_name(name, where)
    if root is not None and name not in (declared := declared_environments(root)):
        raise EnvironmentsError(
            f"{where}: environment {name!r} is not declared in {root / 'pyproject.toml'}"
            f" ({TABLE} = {declared}); declare it there"
        )
    return name


def overlays(base: Path) -> dict[str, Path]:
    """Environment -> overlay file, for every ``<name>.<env>.yaml`` beside ``base``.

    Each overlay's environment must be declared in the workspace the file lives in,
    so a stray ``*.qa.yaml`` is refused by every reader, not used by some and ignored
    by others.
    """
    from airnub_core.storage import repository_root

    prefix, suffix = f"{base.stem}.", base.suffix
    found = {
        path.name[len(prefix) : -len(suffix)]: path
        for path in sorted(base.parent.iterdir())
        if path.name != base.name
        and path.name.startswith(prefix)
        and path.name.endswith(suffix)
        and path.is_file()
    }
    if found:
        root = repository_root(base.parent)
        for env, path in found.items():
            check_environment(env, str(path), root)
    return found
