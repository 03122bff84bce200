"""The one inventory of the tree: departments -> stages -> categories.

Each node carries what the rest of the code needs to know about it: its flow module,
its config file, its tasks, and, for categories, the inputs and outputs it declares
(:mod:`airnub_core.contracts`). Departments are the installed packages that declare an
``airnub.departments`` entry point (:func:`conventions.departments`); everything below
them is read from the package folders, so listing the tree imports no flow module.
Flows and contracts are imported only when asked for.

``airnub list``, ``check``, ``run``, ``deploy``, the Variables sync, the stage
orchestrators and the generators all read this; none walks the folders on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from airnub_core import config, conventions
from airnub_core.conventions import RESERVED_NAMES, STAGES, ConventionError, Identity

if TYPE_CHECKING:
    from prefect import Flow

    from airnub_core.contracts import Input, Output


# What is wrong with a config file that no node of the tree owns.
ORPHAN = (
    "no category or task owns this file; config files live at <stage>/<category>.yaml"
    " or <stage>/[<category>/]<task>.yaml"
)


def flow_in(module: ModuleType) -> Flow[..., Any]:
    """The one flow defined in ``module`` (imported flows do not count)."""
    from prefect import Flow

    found = [
        value
        for value in vars(module).values()
        if isinstance(value, Flow) and value.fn.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise ConventionError(f"{module.__name__}: expected exactly one flow, found {len(found)}")
    return found[0]


def error_line(error: BaseException) -> str:
    """``RuntimeError: first line of its message``: how a module or package that does not
    load is told in one line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def load_module(name: str) -> ModuleType:
    """Import a department's module. One that exits as it is imported (``sys.exit()`` at
    its top level) raises ImportError instead: a listing or a check goes on, and never
    ends with the exit code the module chose."""
    try:
        return importlib.import_module(name)
    except SystemExit as exit:
        raise ImportError(f"{name} exits on import (SystemExit: {exit.code!r})") from None


@dataclass(frozen=True)
class Node:
    """A module of the tree that may own a config file: a stage or category flow, a task."""

    identity: Identity
    module: str  # its dotted name
    path: Path  # its file
    # Why the node cannot be loaded (a category folder without exactly one flow module).
    # It stays in the tree, so listing and checking see it, and loading it says why.
    problem: str | None = None

    @property
    def config_path(self) -> Path:
        return config.config_path(self.identity)

    def load(self) -> ModuleType:
        if self.problem:
            raise ConventionError(self.problem)
        return load_module(self.module)

    def flow(self) -> Flow[..., Any]:
        return flow_in(self.load())


@dataclass(frozen=True)
class Category(Node):
    tasks: tuple[Node, ...] = ()
    subflows: tuple[Node, ...] = ()

    @property
    def name(self) -> str:
        assert self.identity.category is not None
        return self.identity.category

    @property
    def key(self) -> str:
        """``ingestion/public_api_data``: how contracts and messages name a category."""
        return f"{self.identity.stage}/{self.name}"

    @cached_property
    def contracts(self) -> tuple[list[Input], list[Output]]:
        """What the category declares it reads and writes: the top-level declarations of
        its flow module, its tasks and its subflows (this imports them all)."""
        from airnub_core.contracts import declared

        modules = [self.load(), *(node.load() for node in (*self.tasks, *self.subflows))]
        return declared(*modules)


@dataclass(frozen=True)
class Stage(Node):
    categories: tuple[Category, ...] = ()
    tasks: tuple[Node, ...] = ()

    @property
    def name(self) -> str:
        assert self.identity.stage is not None
        return self.identity.stage

    def category(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)


@dataclass(frozen=True)
class BrokenEdge:
    """A declared input its upstream could never meet, and why: the upstream is no
    category here, does not load, or does not declare that output."""

    item: Input
    why: Literal["no category", "does not load", "not declared"]
    offered: tuple[str, ...] = ()  # what the upstream declares, when it loads

    def __str__(self) -> str:
        from airnub_core.contracts import shown

        where = f"{self.item.stage}/{self.item.category}"
        read = f"reads {where} {shown(self.item.name)}"
        if self.why == "no category":
            return f"{read}, but {where} is not a category here"
        if self.why == "does not load":
            return f"{read}, but {where} does not load"
        return f"{read}, which {where} does not declare"


@dataclass(frozen=True)
class Department:
    id: str
    display_name: str
    src: Path
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        conventions.check_stage(name)
        return next(s for s in self.stages if s.name == name)

    @property
    def categories(self) -> Iterator[Category]:
        for stage in self.stages:
            yield from stage.categories

    def category(self, key: str) -> Category | None:
        """A category by ``stage/name``."""
        return next((c for c in self.categories if c.key == key), None)

    def broken_edge(self, item: Input) -> BrokenEdge | None:
        """Why no run could meet ``item``, or None when its upstream declares it."""
        upstream = self.category(f"{item.stage}/{item.category}")
        if upstream is None:
            return BrokenEdge(item, "no category")
        try:
            _, outputs = upstream.contracts
        except Exception:  # the upstream's own error, reported where it is
            return BrokenEdge(item, "does not load")
        offered = tuple(sorted(output.name for output in outputs))
        return None if item.name in offered else BrokenEdge(item, "not declared", offered)

    def configurable(self) -> Iterator[Node]:
        """Every node that may own a config file: stage tasks, categories, their tasks."""
        for stage in self.stages:
            yield from stage.tasks
            for category in stage.categories:
                yield category
                yield from category.tasks

    def config_owners(self) -> dict[Path, Node]:
        """Config file path -> the node it configures (whether or not the file exists).
        A category and a stage task of the same name share a path: the category owns it."""
        return {node.config_path: node for node in self.configurable()}

    def config_files(self) -> Iterator[tuple[Path, Node | None]]:
        """Each base config file (overlays, ``<name>.<env>.yaml``, are merged into it) with
        the node it configures, or None for a file no node owns."""
        owners = self.config_owners()
        base = self.src.joinpath(*config.CONFIG_DIR)
        for path in sorted(base.glob("**/*.yaml")):
            if "." not in path.stem:
                yield path, owners.get(path)


def _modules(folder: Path, suffix: str) -> list[Path]:
    """The ``*<suffix>.py`` modules in ``folder``: regular files only, as Python imports
    nothing else (a FIFO or a folder of that name is not a module)."""
    return [path for path in sorted(folder.glob(f"*{suffix}.py")) if path.is_file()]


def _tasks(folder: Path, module: str, identity: Identity) -> tuple[Node, ...]:
    suffix = conventions.task_suffix(identity.department)
    found = []
    for path in _modules(folder / "tasks", suffix):
        task = path.stem.removesuffix(suffix)
        if task:
            owner = Identity(identity.department, identity.stage, identity.category, task=task)
            found.append(Node(owner, f"{module}.tasks.{path.stem}", path))
    return tuple(found)


def _subflows(folder: Path, module: str, identity: Identity) -> tuple[Node, ...]:
    suffix = conventions.subflow_suffix(identity.department)
    return tuple(
        Node(replace(identity, action=action), f"{module}.subflows.{path.stem}", path)
        for path in _modules(folder / "subflows", suffix)
        if (action := path.stem.removesuffix(suffix))
    )


def _category(department: str, stage: str, folder: Path) -> Category:
    """The category in ``folder``: one ``*_flow_<dept>.py`` module, else a problem. A folder
    named against the conventions is listed too, with that as its problem, so nothing
    imports it under a name that is no category's (``a b``, ``Feed``, ``class``)."""
    suffix = conventions.flow_suffix(department)
    package = f"{department}.{stage}.{folder.name}"
    where = f"{department}/{stage}/{folder.name}"
    try:
        conventions.check_category(folder.name)
    except ConventionError as error:
        problem = f"{department}/{stage}: {error}"
        return Category(Identity(department, stage, folder.name), package, folder, problem)
    flows = _modules(folder, suffix)
    if len(flows) != 1:
        problem = f"{where}: expected one *{suffix}.py module, found {len(flows)}"
        return Category(Identity(department, stage, folder.name), package, folder, problem)
    identity = Identity(department, stage, folder.name, flows[0].stem.removesuffix(suffix))
    tasks = _tasks(folder, package, identity)
    subflows = _subflows(folder, package, identity)
    return Category(identity, f"{package}.{flows[0].stem}", flows[0], tasks=tasks,
                    subflows=subflows)  # fmt: skip


def _stage(department: str, src: Path, stage: str) -> Stage:
    folder = src / stage
    categories = tuple(
        _category(department, stage, child)
        for child in sorted(folder.iterdir() if folder.is_dir() else [])
        if child.is_dir() and child.name not in RESERVED_NAMES and (child / "__init__.py").is_file()
    )
    identity = Identity(department, stage)
    module = f"{department}.{stage}{conventions.flow_suffix(department)}"
    tasks = _tasks(folder, f"{department}.{stage}", identity)
    path = src / f"{stage}{conventions.flow_suffix(department)}.py"
    return Stage(identity, module, path, categories=categories, tasks=tasks)


def at(src: Path, department_id: str, display_name: str = "") -> Department:
    """The tree of the department package in ``src``, installed or not (the generators
    read a working tree that ``uv sync`` has not seen yet)."""
    stages = tuple(_stage(department_id, src, stage) for stage in STAGES)
    return Department(department_id, display_name, src, stages)


def department(department_id: str) -> Department:
    """One installed department's tree; raises ConventionError, in one line, for an
    unknown department or one whose package does not import."""
    name = conventions.display_name(department_id)
    try:
        src = config.package_dir(department_id)  # runs the package's __init__, no flow
    except (Exception, SystemExit) as error:  # a broken or hostile __init__: one line
        why = error_line(error)
        raise ConventionError(f"{department_id}: its package does not import ({why})") from None
    if src.name != department_id or not (src / "__init__.py").is_file():
        raise ConventionError(f"{department_id}: not a regular package (no __init__.py)")
    return at(src, department_id, name)


def departments(only: Iterable[str] | None = None) -> list[Department]:
    """Every installed department's tree (or those in ``only``, each checked to exist)."""
    chosen = list(only) if only else list(conventions.departments())
    return [department(d) for d in chosen]


def folders(root: Path) -> dict[str, Path]:
    """Department folders of a working tree (``packages/dept_*`` holding a pyproject.toml),
    installed or not: id -> folder. What `airnub check` and the generators walk."""
    packages = root / "packages"
    return {
        folder.name: folder
        for folder in sorted(packages.glob(f"{conventions.DEPARTMENT_PREFIX}*"))
        if (folder / "pyproject.toml").is_file()
    }


def readable(only: Iterable[str] | None = None) -> tuple[list[Department], dict[str, str]]:
    """Like :func:`departments`, but one that cannot be read does not hide the others:
    the trees read, and for each department that could not be, why."""
    trees: list[Department] = []
    broken: dict[str, str] = {}
    for department_id in dict.fromkeys(only or conventions.departments()):
        try:
            trees.append(department(department_id))
        except ConventionError as error:
            broken[department_id] = str(error)
    return trees, broken
