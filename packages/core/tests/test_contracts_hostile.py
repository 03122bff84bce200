"""Declared contracts against a hostile department author: names that look alike, names
too long to look up, outputs that are folders, declarations made twice, imported from
another category, or made where nothing reads them."""

import types
import unicodedata

import pytest
from airnub_core.contracts import (
    MissingInput,
    consumes,
    declared,
    late_declarations,
    produces,
    shown,
)
from airnub_core.conventions import ConventionError
from hypothesis import given
from hypothesis import strategies as st

READER = "dept_x.processing.tidy.process_tidy_flow_dept_x"
WRITER = "dept_x.ingestion.feed.ingest_feed_flow_dept_x"
OTHER = "dept_x.processing.other.process_other_flow_dept_x"


def test_one_name_has_one_spelling_whatever_its_slashes_and_unicode_composition():
    composed, decomposed = "caf\u00e9.csv", "cafe\u0301.csv"
    assert composed != decomposed  # two strings, one file name as a person reads it
    written = produces(WRITER, decomposed)
    wanted = consumes(READER, "ingestion", "feed", composed)
    assert written.name == composed and wanted.source == written
    assert produces(WRITER, "./files//manifest.json/").name == "files/manifest.json"


@pytest.mark.parametrize("name", [".", "./", "a/.."])
def test_a_name_that_is_the_category_folder_itself_is_refused(name):
    with pytest.raises(ConventionError, match="must be a relative path below"):
        produces(WRITER, name)


def test_a_lookalike_is_shown_escaped_so_it_differs_from_what_it_imitates():
    lookalike = "records.js\u043en"  # a Cyrillic o
    assert shown("records.json") == "records.json"
    assert shown(lookalike) == "'records.js\\u043en'"
    assert unicodedata.normalize("NFC", lookalike) == lookalike  # no normal form merges them


@pytest.mark.parametrize(
    "name", ["a" * 256, "\u00e9" * 128, "/".join(["a" * 200] * 6)], ids=["ascii", "utf8", "deep"]
)
def test_a_name_the_os_could_not_even_look_up_is_refused_when_declared(name, airnub_data_root):
    with pytest.raises(ConventionError, match="is too long: at most 255 bytes between slashes"):
        consumes(READER, "ingestion", "feed", name)
    longest = produces(WRITER, "a" * 255)  # the longest allowed: looked up, not an OSError
    with pytest.raises(MissingInput):
        consumes(READER, "ingestion", "feed", longest.name).path()


@given(st.text(max_size=300))
def test_every_accepted_name_can_be_looked_up(name):
    try:
        output = produces(WRITER, name)
    except ConventionError:
        return
    assert all(0 < len(part.encode()) <= 255 for part in output.name.split("/"))
    assert len(output.name.encode()) <= 1024 and output.name.isprintable()


def test_an_output_that_is_a_folder_is_written_once_it_holds_a_file(airnub_data_root):
    files = produces(WRITER, "files")
    wanted = consumes(READER, "ingestion", "feed", "files")
    with pytest.raises(MissingInput):
        wanted.path()
    files.path().mkdir()
    with pytest.raises(MissingInput):  # an empty folder: a producer that made it and failed
        wanted.path()
    (files.path() / "a.csv").write_text("x\n")
    assert wanted.path() == airnub_data_root / "dept_x/ingestion/feed/files"


def test_a_contract_declared_twice_or_under_two_names_is_one_contract():
    module = types.ModuleType(READER)
    module.A = consumes(READER, "ingestion", "feed", "a.json")  # type: ignore[attr-defined]
    module.B = consumes(READER, "ingestion", "feed", "a.json")  # type: ignore[attr-defined]
    module.C = module.A  # type: ignore[attr-defined]
    module.OUT = produces(READER, "b.csv")  # type: ignore[attr-defined]
    again = types.ModuleType(READER.replace("process_tidy_flow", "tasks.t_task"))
    again.OUT = produces(again.__name__, "b.csv")  # type: ignore[attr-defined]
    inputs, outputs = declared(module, again)
    assert [i.key for i in inputs] == ["ingestion/feed a.json"]
    assert [o.key for o in outputs] == ["processing/tidy b.csv"]


def test_a_contract_imported_from_another_category_is_not_this_ones():
    module = types.ModuleType(OTHER)
    # `from ..tidy.process_tidy_flow_dept_x import READINGS, TABLE`: tidy's, not other's
    module.READINGS = consumes(READER, "ingestion", "feed", "a.json")  # type: ignore[attr-defined]
    module.TABLE = produces(READER, "table.csv")  # type: ignore[attr-defined]
    assert declared(module) == ([], [])


LATE = """
from airnub_core import contracts
from airnub_core.contracts import consumes, produces

TOP = produces(__name__, "top.csv")


def later():
    return consumes(__name__, "ingestion", "feed", "late.json")


class Paths:
    OUT = contracts.produces(__name__, "in_a_class.csv")


async def nested():
    def inner():
        return produces(__name__, "deep.csv")
    return inner
"""


def test_declarations_made_inside_a_function_or_class_are_found_by_line(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(LATE)
    assert late_declarations(path) == [(9, "later"), (13, "Paths"), (18, "nested")]


def test_a_file_that_does_not_parse_or_read_has_no_late_declarations(tmp_path):
    (tmp_path / "broken.py").write_text("def (:\n")
    assert late_declarations(tmp_path / "broken.py") == []
    assert late_declarations(tmp_path / "missing.py") == []
