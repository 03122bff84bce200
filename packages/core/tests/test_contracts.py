"""Declared data contracts: where a category's inputs come from and what it writes."""

import types

import pytest
from airnub_core.contracts import Input, MissingInput, Output, consumes, declared, produces
from airnub_core.conventions import ConventionError
from hypothesis import given
from hypothesis import strategies as st

READER = "dept_x.processing.tidy.process_tidy_flow_dept_x"
WRITER = "dept_x.ingestion.feed.ingest_feed_flow_dept_x"


def test_an_input_is_found_where_its_producer_writes(airnub_data_root):
    written = produces(WRITER, "records.json")
    wanted = consumes(READER, "ingestion", "feed", "records.json")
    assert wanted.source == written
    with pytest.raises(MissingInput) as missing:
        wanted.path()
    assert str(missing.value) == (
        "processing/tidy needs ingestion/feed records.json: run that category first"
        " (airnub run dept_x ingestion --category feed)"
    )
    assert not (airnub_data_root / "dept_x").exists()  # looking made no folder
    written.path().write_text("[]")
    assert wanted.path() == airnub_data_root / "dept_x" / "ingestion" / "feed" / "records.json"


def test_nested_names_are_below_the_category_folder(airnub_data_root):
    output = produces(WRITER, "files/manifest.json")
    assert output.path() == airnub_data_root / "dept_x/ingestion/feed/files/manifest.json"


@pytest.mark.parametrize(
    ("stage", "category", "message"),
    [
        ("processing", "other", "inputs come from a stage before processing"),
        ("analysis", "sums", "inputs come from a stage before processing"),
        ("staging", "feed", "unknown stage 'staging'"),
        ("ingestion", "Feed", "must be lowercase snake_case"),
        ("ingestion", "tasks", "is reserved"),
    ],
)
def test_an_input_must_come_from_an_earlier_stage_and_a_valid_category(stage, category, message):
    with pytest.raises(ConventionError, match=message):
        consumes(READER, stage, category, "x.json")


HOSTILE_NAMES = {
    "": "a relative path", "/etc/passwd": "a relative path", "../x.json": "a relative path",
    "a/../../b": "a relative path", "a\\b": "a relative path", "a\x00": "printable",
    "a.csv\nB --> C": "printable", "\x1b[2Jx": "printable",
}  # fmt: skip


@pytest.mark.parametrize(("name", "why"), HOSTILE_NAMES.items())
def test_a_name_that_could_leave_the_category_folder_or_its_line_is_refused(name, why):
    with pytest.raises(ConventionError, match=f"must be {why}"):
        produces(WRITER, name)
    with pytest.raises(ConventionError, match=f"must be {why}"):
        consumes(READER, "ingestion", "feed", name)


@given(st.text(max_size=40))
def test_any_accepted_name_stays_below_its_category(name):
    try:
        output = produces(WRITER, name)
    except ConventionError:
        return
    parts = output.name.split("/")
    assert ".." not in parts and not output.name.startswith("/") and output.name.isprintable()


def test_contracts_are_declared_in_a_category_module_only():
    with pytest.raises(ConventionError, match="declared in a category's modules"):
        produces("dept_x.ingestion_flow_dept_x", "x.json")
    with pytest.raises(ConventionError, match="not inside a dept_<id> package"):
        consumes("somewhere.else", "ingestion", "feed", "x.json")


def test_a_module_declares_what_its_top_level_holds():
    module = types.ModuleType(READER)
    module.B = produces(READER, "b.csv")  # type: ignore[attr-defined]
    module.A = consumes(READER, "ingestion", "feed", "a.json")  # type: ignore[attr-defined]
    module.other = "not a contract"  # type: ignore[attr-defined]
    inputs, outputs = declared(module)
    assert [type(i) for i in inputs] == [Input] and inputs[0].key == "ingestion/feed a.json"
    assert [type(o) for o in outputs] == [Output] and outputs[0].key == "processing/tidy b.csv"
