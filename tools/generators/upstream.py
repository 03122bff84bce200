"""What a generated processing or analysis category reads: ``--reads STAGE/CATEGORY[:NAME]``.

The upstream is looked up in the inventory (:mod:`airnub_core.inventory`), so the edge
the generated ``consumes(...)`` declares is one ``airnub check`` accepts: a category of
an earlier stage of the same department that declares the output NAME. The templates
read a CSV table or the CSV files a download manifest lists, so NAME is one of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import scaffold
from airnub_core import conventions, inventory
from airnub_core.conventions import STAGES
from airnub_core.downloads import MANIFEST
from airnub_core.inventory import Category, Department

OPTION = "--reads"
FORM = "STAGE/CATEGORY[:NAME]"
READABLE = f"a CSV table (*.csv) or a download manifest ({MANIFEST})"


@dataclass(frozen=True)
class Upstream:
    stage: str
    category: str
    name: str  # the output read, as the upstream declares it
    module: str  # the upstream's flow module
    flow: str  # its flow function

    @property
    def kind(self) -> str:
        kind = kind_of(self.name)
        assert kind is not None
        return kind

    @property
    def package(self) -> str:
        return self.module.rpartition(".")[0]

    @property
    def leaf(self) -> str:
        return self.module.rpartition(".")[2]


def kind_of(name: str) -> str | None:
    """How the templates read an output: ``manifest``, ``table``, or None (they cannot)."""
    if PurePosixPath(name).name == MANIFEST:
        return "manifest"
    return "table" if name.endswith(".csv") else None


def refuse(message: str) -> scaffold.ScaffoldError:
    return scaffold.ScaffoldError(f"{OPTION}: {message}")


def resolve(tree: Department, stage: str, value: str | None) -> Upstream:
    """The upstream a new ``stage`` category of ``tree`` reads, checked; ``value`` None
    means the only category of the stage before."""
    if stage == STAGES[0]:
        raise refuse(f"an {stage} category reads its configured sources, not another category")
    if value is None:
        category, name = _only_category(tree, STAGES[STAGES.index(stage) - 1]), None
    else:
        category, name = _named_category(tree, stage, value)
    return _output(category, name, stage)


def _only_category(tree: Department, stage: str) -> Category:
    found = tree.stage(stage).categories
    if len(found) == 1:
        return found[0]
    names = ", ".join(c.name for c in found)
    which = f"several {stage} categories ({names})" if found else f"no {stage} category"
    raise refuse(f"{tree.id} has {which} to read from; name one: {OPTION} {FORM}")


def _named_category(tree: Department, stage: str, value: str) -> tuple[Category, str | None]:
    where, _, rest = value.partition("/")
    category, colon, name = rest.partition(":")
    if not where or not category:
        raise refuse(f"{value!r} is not {FORM}")
    if colon and not name:
        raise refuse(f"{value!r} names no output after ':'")
    upstream_stage = scaffold.check(OPTION, conventions.check_stage, where)
    scaffold.check(OPTION, conventions.check_category, category)
    if STAGES.index(upstream_stage) >= STAGES.index(stage):
        raise refuse(
            f"{upstream_stage}/{category} is not in a stage before {stage}; a category reads"
            " from an earlier stage, whose categories have all finished when it starts"
        )
    found = tree.stage(upstream_stage).category(category)
    if found is None:
        known = [c.name for c in tree.stage(upstream_stage).categories]
        what = f"{upstream_stage} category of {tree.id}"
        raise refuse(conventions.unknown(what, category, known))
    return found, name if colon else None


def _output(category: Category, name: str | None, reader: str) -> Upstream:
    """The output of ``category`` to read: ``name``, or the one it declares that the
    ``reader`` stage's template can read."""
    try:
        _, outputs = category.contracts
        flow = category.flow()
    except (Exception, SystemExit) as error:  # its own code: whatever it raises, in one line
        raise refuse(f"{category.key} does not load ({inventory.error_line(error)})") from None
    declared = [output.name for output in outputs]
    offered = ", ".join(declared) or "nothing"
    if name is None:
        readable = [n for n in declared if kind_of(n)]
        if len(readable) != 1:
            count = "several outputs" if readable else "no output"
            raise refuse(
                f"{category.key} declares {count} that the {reader} template can read"
                f" ({READABLE}); it declares: {offered}; name one: {OPTION} {category.key}:NAME"
            )
        name = readable[0]
    elif name not in declared:
        raise refuse(f"{category.key} declares no output {name!r}; it declares: {offered}")
    elif kind_of(name) is None:
        raise refuse(f"{category.key} {name}: the {reader} template reads {READABLE} only")
    assert category.identity.stage is not None
    return Upstream(category.identity.stage, category.name, name, category.module, flow.fn.__name__)
