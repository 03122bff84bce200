"""Data contracts between categories, declared where the data is written and read.

A producer declares each file it writes into its category's output folder::

    RECORDS = produces(__name__, "records.json")
    ...
    write_json_atomic(RECORDS.path(), rows)

and a consumer declares what it reads from another category of its department::

    READINGS = consumes(__name__, "ingestion", "public_api_data", "records.json")
    ...
    rows = json.loads(READINGS.path().read_text())

``airnub check`` verifies every edge (the upstream category exists and declares that
output); ``airnub run --category`` names an input that is not there yet, and so does
:meth:`Input.path` inside a run; ``airnub list --graph`` draws the edges.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

from airnub_core import conventions, storage
from airnub_core.conventions import STAGES, ConventionError, Identity, identify

# Bytes in one part of an output's name (the file systems' NAME_MAX) and in the whole
# name: past them the OS refuses to even look the file up.
MAX_NAME_PART_BYTES = 255
MAX_NAME_BYTES = 1024


class MissingInput(FileNotFoundError):
    """A declared input that its producer has not written (yet)."""


def _file_name(name: str, where: str) -> str:
    """An output's name: a relative path below the category's folder, without ``..``,
    in one spelling: ``./a//b/`` is ``a/b``, and Unicode is composed (NFC), so a producer
    and a consumer typing the same text name the same file."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name or not pure.parts:
        raise ConventionError(
            f"{where}: output name {name!r} must be a relative path below the"
            " category's folder, without .."
        )
    if not name.isprintable():  # one line in messages and graphs, and no NUL for the OS
        raise ConventionError(f"{where}: output name {name!r} must be printable, on one line")
    normal = unicodedata.normalize("NFC", pure.as_posix())
    longest = max(len(part.encode()) for part in pure.parts)
    if longest > MAX_NAME_PART_BYTES or len(normal.encode()) > MAX_NAME_BYTES:
        raise ConventionError(
            f"{where}: output name {name[:40]!r}... is too long: at most {MAX_NAME_PART_BYTES}"
            f" bytes between slashes and {MAX_NAME_BYTES} in all"
        )
    return normal


def _category_of(module_name: str) -> Identity:
    """The category (not the flow or task within it) that ``module_name`` belongs to."""
    identity = identify(module_name)
    if identity.category is None:
        raise ConventionError(f"{module_name}: contracts are declared in a category's modules")
    return Identity(identity.department, identity.stage, identity.category)


@dataclass(frozen=True)
class Output:
    """A file a category writes into its own output folder."""

    owner: Identity
    name: str

    @property
    def key(self) -> str:
        return f"{self.owner.stage}/{self.owner.category} {self.name}"

    def path(self) -> storage.DataPath:
        """Where the category writes the file: its output folder (made on demand)."""
        return storage.output_dir(*self.owner.parts) / self.name

    def written(self, root: storage.DataPath | None = None) -> bool:
        """Whether the output is there (below ``root``, by default the data root): a file,
        or a folder holding something (an output may name a folder of files). Looked up
        without making any folder."""
        root = root or storage.data_root()
        return storage.holds_content(root.joinpath(*self.owner.parts, *self.name.split("/")))


@dataclass(frozen=True)
class Input:
    """A file a category reads from an upstream category of its department."""

    reader: Identity
    stage: str
    category: str
    name: str

    @property
    def source(self) -> Output:
        upstream = Identity(self.reader.department, self.stage, self.category)
        return Output(upstream, self.name)

    @property
    def key(self) -> str:
        return self.source.key

    def unmet(self) -> str:
        """Why a run of the reader cannot start, told the way a person fixes it."""
        return (
            f"{self.reader.stage}/{self.reader.category} needs {self.key}:"
            f" run that category first (airnub run {self.reader.department}"
            f" {self.stage} --category {self.category})"
        )

    def path(self) -> storage.DataPath:
        """The upstream file; raises :class:`MissingInput` if it has not been written."""
        if not self.source.written():
            raise MissingInput(self.unmet())
        return self.source.path()


def produces(module_name: str, name: str) -> Output:
    """Declare, in a category's module, a file the category writes."""
    owner = _category_of(module_name)
    return Output(owner, _file_name(name, module_name))


def consumes(module_name: str, stage: str, category: str, name: str) -> Input:
    """Declare, in a category's module, a file it reads from ``stage/category``.

    The upstream is in an earlier stage: a stage's categories run at the same time, so
    one could not wait for another's file."""
    reader = _category_of(module_name)
    conventions.check_stage(stage)
    conventions.check_category(category)
    assert reader.stage is not None
    if STAGES.index(stage) >= STAGES.index(reader.stage):
        raise ConventionError(
            f"{module_name}: reads {stage}/{category}; inputs come from a stage before"
            f" {reader.stage}, whose categories have all finished when it starts"
        )
    return Input(reader, stage, category, _file_name(name, module_name))


def declared(*modules: ModuleType) -> tuple[list[Input], list[Output]]:
    """The inputs and outputs that the modules of one category declare at their top level,
    each once, in module then name order. A contract a module imports from another
    category (``from ..feed.ingest_feed_flow_dept_x import RECORDS``) is that category's,
    not this one's: reading another category's file takes a ``consumes``."""
    found: dict[Input | Output, None] = {}
    for module in modules:
        own = _category_of(module.__name__)
        for _, value in sorted(vars(module).items()):
            mine = isinstance(value, Input) and value.reader == own
            if mine or (isinstance(value, Output) and value.owner == own):
                found[value] = None
    return (
        [v for v in found if isinstance(v, Input)],
        [v for v in found if isinstance(v, Output)],
    )


def shown(name: str) -> str:
    """A name as messages show it: plain if ASCII, else escaped, so that a lookalike (a
    Cyrillic o, U+043E, in "records.json") differs visibly from the name it imitates."""
    return name if name.isascii() else ascii(name)


# The calls that declare a contract, as a module spells them.
DECLARERS = frozenset({"produces", "consumes"})


def late_declarations(path: Path) -> list[tuple[int, str]]:
    """(line, the function or class) of each ``produces``/``consumes`` call in a body
    rather than at the module's top level: :func:`declared` reads the top level, so such a
    contract is unseen by check, run and the graph. A file that does not parse has none
    (importing it fails, and says why)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    late: dict[int, str] = {}
    for scope in ast.walk(tree):
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for node in ast.walk(scope):
                if isinstance(node, ast.Call) and _called(node.func) in DECLARERS:
                    late.setdefault(node.lineno, scope.name)
    return sorted(late.items())


def _called(func: object) -> str | None:
    """``produces`` for ``produces(...)`` and ``contracts.produces(...)``."""
    import ast

    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None
