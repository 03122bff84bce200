"""A category task wired into its category's flow: ``add_task --with-config`` adds the
import and a call on the flow's ``outputs`` where the flow template's marker line is,
and ``remove_task`` takes exactly those out again.

Every edit is parsed before it is accepted: the call must land at the top level of the
``@category_flow`` function, after ``outputs`` is assigned there. Anything else (no
marker, the marker inside a block or a string, a name the flow already uses) is not
edited; the generator says where to add the two lines instead.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from airnub_platform.scaffolding import TASKS_MARKER

OUTPUTS = "outputs"  # what the flow templates call the list of files the flow wrote


@dataclass(frozen=True)
class Wiring:
    task: str  # the task function, e.g. count_rows
    module: str  # its module in the category's tasks/ folder, e.g. count_rows_task_dept_x
    alias: str | None = None  # the name it is imported as, where its own is taken

    @property
    def import_line(self) -> str:
        alias = f" as {self.alias}" if self.alias else ""
        return f"from .tasks.{self.module} import {self.task}{alias}"

    @property
    def call(self) -> str:
        return f"{self.alias or self.task}({OUTPUTS})"

    def imported_by(self, node: ast.stmt) -> bool:
        return (
            isinstance(node, ast.ImportFrom)
            and node.level == 1
            and node.module == f"tasks.{self.module}"
            and [(a.name, a.asname) for a in node.names] == [(self.task, None)]
        )

    def called_by(self, node: ast.stmt) -> bool:
        return (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == self.task
            and [ast.unparse(a) for a in node.value.args] == [OUTPUTS]
            and not node.value.keywords
        )


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _decorated(function: ast.FunctionDef, name: str) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (isinstance(target, ast.Name) and target.id == name) or (
            isinstance(target, ast.Attribute) and target.attr == name
        ):
            return True
    return False


def flow_function(tree: ast.Module) -> ast.FunctionDef | None:
    """The module's top-level ``@category_flow`` function."""
    found = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and _decorated(node, "category_flow")
    ]
    return found[0] if len(found) == 1 else None


def _bound(tree: ast.Module, function: ast.FunctionDef) -> set[str]:
    """Names the module binds at its top level, and the flow function in its body."""
    names: set[str] = set()
    for node in [*tree.body, *ast.walk(function)]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for target in targets for t in ast.walk(target)
                      if isinstance(t, ast.Name)}  # fmt: skip
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _import_line(tree: ast.Module) -> int:
    """The 0-based index of the line after the module's last top-level import."""
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if imports:
        return imports[-1].end_lineno or imports[-1].lineno
    docstring = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    return (docstring.end_lineno or 0) if docstring else 0


class NotWired(Exception):
    """Why a task was not wired in; the generator says where to add it instead."""


def wire(source: str, wiring: Wiring) -> str:
    """``source`` with the task imported and called just before the marker line;
    raises :class:`NotWired` unless that is a call at the top level of the flow, after
    ``outputs`` is assigned there."""
    tree = _parse(source)
    if tree is None:
        raise NotWired("it does not parse")
    function = flow_function(tree)
    if function is None:
        raise NotWired("it has no one @category_flow function")
    if wiring.task in _bound(tree, function):
        raise NotWired(f"the name {wiring.task} is taken there")
    lines = source.splitlines(keepends=True)
    marked = [i for i, line in enumerate(lines) if line.strip() == TASKS_MARKER]
    if len(marked) != 1:
        raise NotWired(f"it has {'no' if not marked else 'more than one'} {TASKS_MARKER!r} line")
    marker = lines[marked[0]]
    indent = marker[: len(marker) - len(marker.lstrip())]
    lines.insert(marked[0], f"{indent}{wiring.call}\n")
    lines.insert(_import_line(tree), f"{wiring.import_line}\n")
    edited = "".join(lines)
    if not _wired(edited, wiring):
        raise NotWired(f"its {TASKS_MARKER!r} line is not in the body of {function.name},"
                       f" after {OUTPUTS} is assigned")  # fmt: skip
    return edited


def _wired(source: str, wiring: Wiring) -> bool:
    """Whether ``source`` imports the task at its top level and calls it in the flow's
    body after ``outputs`` is assigned there."""
    tree = _parse(source)
    function = flow_function(tree) if tree else None
    if tree is None or function is None:
        return False
    calls = [i for i, node in enumerate(function.body) if wiring.called_by(node)]
    assigned = [i for i, node in enumerate(function.body) if _assigns_outputs(node)]
    imported = any(wiring.imported_by(node) for node in tree.body)
    return imported and len(calls) == 1 and bool(assigned) and min(assigned) < calls[0]


def _assigns_outputs(node: ast.stmt) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else []
    targets += [node.target] if isinstance(node, ast.AnnAssign) else []
    return any(isinstance(t, ast.Name) and t.id == OUTPUTS for t in targets)


def unwire(source: str, wiring: Wiring) -> str | None:
    """``source`` without the import and the call :func:`wire` added, or None unless
    both are there as it wrote them."""
    tree = _parse(source)
    function = flow_function(tree) if tree else None
    if tree is None or function is None:
        return None
    imports = [node for node in tree.body if wiring.imported_by(node)]
    calls = [node for node in function.body if wiring.called_by(node)]
    if len(imports) != 1 or len(calls) != 1:
        return None
    lines = source.splitlines(keepends=True)
    for node in sorted([*imports, *calls], key=lambda n: n.lineno, reverse=True):
        del lines[node.lineno - 1 : node.end_lineno or node.lineno]
    return "".join(lines)


def where_to_call(path: Path, source: str, wiring: Wiring) -> list[str]:
    """Where to add the import and the call by hand, as ``file:line: code`` lines (under
    another name where the task's own is taken)."""
    tree = _parse(source)
    function = flow_function(tree) if tree else None
    if tree is None or function is None:
        return [f"{path}: {wiring.import_line}",
                f"{path}: {wiring.call}  (in its category flow, once the files it"
                " wrote are known)"]  # fmt: skip
    taken = _bound(tree, function)
    if wiring.task in taken:
        alias = f"{wiring.task}_task" if f"{wiring.task}_task" not in taken else wiring.module
        wiring = Wiring(wiring.task, wiring.module, alias)
    returns = [node for node in function.body if isinstance(node, ast.Return)]
    call_at = returns[-1].lineno if returns else (function.end_lineno or function.lineno) + 1
    return [
        f"{path}:{_import_line(tree) + 1}: {wiring.import_line}",
        f"{path}:{call_at}: {wiring.call}  (in {function.name}, before this line; {OUTPUTS}:"
        " the list of files the flow wrote)",
    ]
