import re

import pytest
from airnub_core.conventions import (
    STAGES,
    ConventionError,
    Identity,
    check_category,
    check_display_name,
    check_identifier,
    department_id,
    humanize,
    identify,
)


def test_stages_are_ordered():
    assert STAGES == ("ingestion", "processing", "analysis")


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("dept_x.ingestion_flow_dept_x", Identity("dept_x", "ingestion")),
        (
            "dept_x.ingestion.public_api_data.ingest_public_api_data_flow_dept_x",
            Identity("dept_x", "ingestion", "public_api_data", "ingest_public_api_data"),
        ),
        (
            "dept_x.ingestion.public_api_data.tasks.parse_task_dept_x",
            Identity("dept_x", "ingestion", "public_api_data", task="parse"),
        ),
        (
            "dept_x.analysis.tasks.metrics_task_dept_x",
            Identity("dept_x", "analysis", task="metrics"),
        ),
        (
            "dept_x.analysis.cat.subflows.describe_outputs_subflow_dept_x",
            Identity("dept_x", "analysis", "cat", action="describe_outputs"),
        ),
        ("dept_x", Identity("dept_x")),
    ],
)
def test_identify(module, expected):
    assert identify(module) == expected


def test_identify_rejects_modules_outside_departments():
    with pytest.raises(ConventionError, match="not inside a dept_<id> package"):
        identify("somewhere.else")
    with pytest.raises(ConventionError, match="unknown stage 'loading'"):
        identify("dept_x.loading.cat.load_cat_flow_dept_x")


def test_humanize_keeps_acronyms():
    assert humanize("ingest_public_api_data") == "Ingest Public API Data"


def test_names_tags_and_variables(demo_department):
    stage = identify(f"{demo_department}.processing_flow_{demo_department}")
    category = identify(f"{demo_department}.ingestion.alpha.make_alpha_flow_{demo_department}")
    assert stage.flow_name == "Processing Flow (Demo Team)"
    assert category.flow_name == "Make Alpha (Demo Team)"
    assert category.tags == ["dept_demo", "ingestion", "alpha"]
    assert category.variable_name() == "dept_demo-ingestion-alpha"
    assert category.deployment_name == "dept-demo-ingestion-alpha"
    task = identify(f"{demo_department}.ingestion.alpha.tasks.parse_task_{demo_department}")
    assert task.variable_name() == "dept_demo-ingestion-alpha-parse"
    assert category.artifact_key("report") == "dept-demo-ingestion-alpha-report"


def test_variable_names_do_not_collide():
    # "-" never occurs in an id, so distinct paths give distinct names.
    a = Identity("dept_a_b", "ingestion", "c")
    b = Identity("dept_a", "ingestion", "b_c")
    assert a.variable_name() != b.variable_name()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("class", "keyword"),
        ("match", "keyword"),
        ("Dept", "snake_case"),
        ("a-b", "snake_case"),
        ("../x", "snake_case"),
        ("a__b", "snake_case"),
        ("1abc", "snake_case"),
        ("café", "snake_case"),
        ("x" * 41, "longer than 40"),
    ],
)
def test_invalid_identifiers(value, reason):
    with pytest.raises(ConventionError, match=reason):
        check_identifier(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("project_gamma", "dept_project_gamma"), ("dept_project_gamma", "dept_project_gamma")],
)
def test_department_ids_take_the_prefix_or_not(value, expected):
    assert department_id(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [("", "empty"), (" Gamma", "whitespace"), ("A/B", "'/'"), ("a=b", "'='"),
     ("[x]", "'[' at the start"), ("tab\there", "'\\t'"), ("x" * 61, "longer than 60")],
)  # fmt: skip
def test_invalid_display_names(value, reason):
    with pytest.raises(ConventionError, match=re.escape(reason)):
        check_display_name(value)


def test_display_names_may_hold_quotes_and_braces():
    assert check_display_name('Team "Q" {ops}') == 'Team "Q" {ops}'


def test_reserved_category_names():
    for name in ("tasks", "subflows", "ingestion"):
        with pytest.raises(ConventionError, match="reserved"):
            check_category(name)
    assert check_category("public_api_data") == "public_api_data"
