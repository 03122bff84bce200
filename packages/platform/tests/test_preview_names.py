"""A preview's id, tag and names: derived once in the conventions, and refused in one line
by both commands when hostile. No server is needed: the id is checked before any is asked."""

import pytest
from airnub_core import conventions
from airnub_core.conventions import (
    MAX_PULL_REQUEST,
    ConventionError,
    Identity,
    check_preview,
    preview_name,
    preview_tag,
)
from airnub_platform.cli import app
from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner

IDS = st.from_regex(r"[a-z][a-z0-9]{0,5}(_[a-z0-9]{1,4}){0,2}", fullmatch=True)
NUMBERS = st.integers(min_value=1, max_value=MAX_PULL_REQUEST)
HOSTILE = [
    "", "pr-0", "pr-x", "PR-1", "pr-1/../x", "pr-01", "pr-1000000000",
    "pr-" + "9" * 40, "pr-1\n", " pr-1", "pr-1 ", "pr--1", "pr-+1", "pr-1.0", "pr-\u0661",
    "pr-1\x1b[2J", "pr-7;id", "$(id)", "../pr-1", "pr_1", "7",
]  # fmt: skip


@given(NUMBERS)
def test_every_pull_request_number_names_a_preview(number):
    preview = f"pr-{number}"
    assert check_preview(preview) == preview
    assert preview_tag(preview) == f"preview:{preview}"
    assert preview_name("dept-x-ingestion", preview) == f"dept-x-ingestion--{preview}"


@given(st.text(max_size=30))
def test_anything_else_is_refused_in_one_line(value):
    digits = value.removeprefix("pr-")
    number = int(digits) if digits.isascii() and digits.isdigit() else 0
    assume(not (value == f"pr-{number}" and 0 < number <= MAX_PULL_REQUEST))  # the test above
    with pytest.raises(ConventionError) as refused:
        check_preview(value)
    assert len(str(refused.value).splitlines()) == 1


@given(IDS, st.sampled_from(conventions.STAGES), IDS | st.none(), NUMBERS)
def test_a_preview_name_is_never_a_production_name(department, stage, category, number):
    """Ids hold single underscores, so production names hold single dashes; the preview
    separator is two, so no category (say one called pr_7) can clash with a preview."""
    name = Identity(f"dept_{department}", stage, category).deployment_name
    assert "--" not in name
    previewed = preview_name(name, f"pr-{number}")
    assert previewed.startswith(f"{name}--") and previewed.count("--") == 1
    assert preview_name(conventions.work_pool_name(f"dept_{department}"), None) != previewed


def one_line_refusal(*arguments):
    result = CliRunner().invoke(app, list(arguments), terminal_width=400)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("value", HOSTILE)
def test_deploy_refuses_a_hostile_preview_before_anything(value):
    line = one_line_refusal("deploy", "dept_nowhere", "--preview", value)
    assert "--preview: preview" in line and "pr-<N>" in line
    assert "\x1b" not in line and "\n" not in line


@pytest.mark.parametrize("value", HOSTILE)
def test_retire_refuses_a_hostile_preview_before_anything(value):
    line = one_line_refusal("retire", "--preview", value)
    assert "--preview: preview" in line and "pr-<N>" in line


@pytest.mark.parametrize(
    "arguments", [["dept_gone"], ["--absent"], ["--force"], ["dept_gone", "--force"]]
)
def test_retire_preview_is_alone(arguments):
    line = one_line_refusal("retire", "--preview", "pr-1", *arguments)
    assert "--preview: alone" in line
