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

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

from airnub_core import conventions, storage
from airnub_core.conventions import STAGES, ConventionError, Identity, identify


class MissingInput(FileNotFoundError):
    """A declared input that its producer has not written (yet)."""


def _file_name(name: str, where: str) -> str:
    """An output's name: a relative path below the category's folder, without ``..``."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise ConventionError(f"{where}: output name {name!r} must be a relative path without ..")
    if not name.isprintable():  # one line in messages and graphs, and no NUL for the OS
        raise ConventionError(f"{where}: output name {name!r} must be printable, on one line")
    return name


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

    def path(self) -> Path:
        """Where the category writes the file: its output folder (made on demand)."""
        return storage.output_dir(*self.owner.parts) / self.name

    def written(self, root: Path | None = None) -> bool:
        """Whether the file is there (below ``root``, by default the data root), looked up
        without making any folder."""
        return (root or storage.data_root()).joinpath(*self.owner.parts, self.name).is_file()


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
            f" --stage {self.stage} --category {self.category})"
        )

    def path(self) -> Path:
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


def declared(module: ModuleType) -> tuple[list[Input], list[Output]]:
    """The inputs and outputs a module declares at its top level, in name order."""
    values = [value for _, value in sorted(vars(module).items())]
    return (
        [v for v in values if isinstance(v, Input)],
        [v for v in values if isinstance(v, Output)],
    )
