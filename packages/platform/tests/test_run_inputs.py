"""`airnub run --category X` explains an input that X's upstream has not written yet."""

import pytest
from airnub_platform import runner
from airnub_platform.cli import app
from airnub_platform.testing import append_to_flow, importable_departments, write_department
from typer.testing import CliRunner

DEPT = "dept_flowing"
PRODUCER = '\nfrom airnub_core.contracts import produces\n\nOUT = produces(__name__, "out.txt")\n'
CONSUMER = (
    "\nfrom airnub_core.contracts import consumes\n\n"
    'FEED = consumes(__name__, "ingestion", "feed", "out.txt")\n'
)
UNMET = (
    "processing/tidy needs ingestion/feed out.txt: run that category first"
    f" (airnub run {DEPT} ingestion --category feed)"
)


@pytest.fixture(scope="module")
def department(tmp_path_factory):
    root = tmp_path_factory.mktemp("flowing")
    write_department(root, DEPT, {"ingestion": ["feed"], "processing": ["tidy"]})
    append_to_flow(root, DEPT, "ingestion", "feed", PRODUCER)
    append_to_flow(root, DEPT, "processing", "tidy", CONSUMER)
    with importable_departments(root, {DEPT: "Flowing Team"}):
        yield DEPT


def test_a_category_alone_names_its_missing_input_and_how_to_make_it(department):
    assert runner.unmet_inputs(department, runner.plan(department, None, "tidy")) == [UNMET]
    assert runner.unmet_inputs(department, runner.plan(department, "processing", None)) == [UNMET]


def test_an_input_written_earlier_in_the_same_run_is_met(department):
    assert runner.unmet_inputs(department, runner.plan(department, None, None)) == []


def test_an_input_on_disk_is_met(department, airnub_data_root):
    (airnub_data_root / department / "ingestion" / "feed").mkdir(parents=True)
    (airnub_data_root / department / "ingestion" / "feed" / "out.txt").write_text("hi")
    assert runner.unmet_inputs(department, runner.plan(department, None, "tidy")) == []


@pytest.mark.usefixtures("prefect_api")
def test_airnub_run_refuses_before_any_run_with_one_line_saying_what_to_run_first(department):
    done = CliRunner().invoke(app, ["run", department, "--category", "tidy"])
    assert done.exit_code == 2, done.output
    assert done.output.splitlines()[-1] == f"error: {UNMET}"
    assert "Make Tidy" not in done.output  # nothing ran


def test_airnub_list_graph_draws_the_edge(department):
    done = CliRunner().invoke(app, ["list", department, "--graph"])
    assert done.exit_code == 0, done.output
    assert '  ingestion__feed -->|"out.txt"| processing__tidy' in done.output.splitlines()


def test_a_contract_no_run_could_meet_is_named_as_broken_not_as_work_to_do(tmp_path):
    dept = "dept_flowing_typo"
    write_department(tmp_path, dept, {"ingestion": ["feed"], "processing": ["tidy", "lost"]})
    append_to_flow(tmp_path, dept, "ingestion", "feed", PRODUCER)
    append_to_flow(tmp_path, dept, "processing", "tidy", CONSUMER.replace("out.txt", "typo.txt"))
    append_to_flow(tmp_path, dept, "processing", "lost", CONSUMER.replace('"feed"', '"gone"'))
    with importable_departments(tmp_path, {dept: "Typo Team"}):
        assert runner.unmet_inputs(dept, runner.plan(dept, "processing", None)) == [
            "processing/lost reads ingestion/gone out.txt, but ingestion/gone is not a category"
            " here; `airnub check` says more",
            "processing/tidy reads ingestion/feed typo.txt, which ingestion/feed does not"
            " declare; `airnub check` says more",
        ]


@pytest.mark.usefixtures("prefect_api")
def test_airnub_run_writes_to_and_checks_inputs_in_an_s3_data_root(
    department, s3_data_root, monkeypatch, tmp_path
):
    """It used to exit 0, having written into a local folder named ``s3:/bucket/root``."""
    monkeypatch.chdir(tmp_path)
    alone = CliRunner().invoke(app, ["run", department, "processing", "--category", "tidy"])
    assert alone.exit_code == 2 and alone.output.splitlines()[-1] == f"error: {UNMET}"
    done = CliRunner().invoke(app, ["run", department])
    assert done.exit_code == 0, done.output
    assert f"Data root:   {s3_data_root}" in done.output
    written = {str(p) for p in s3_data_root.joinpath(department).rglob("out.txt")}
    assert written == {
        f"{s3_data_root}/{department}/{stage}/{category}/out.txt"
        for stage, category in (("ingestion", "feed"), ("processing", "tidy"))
    }
    again = CliRunner().invoke(app, ["run", department, "processing", "--category", "tidy"])
    assert again.exit_code == 0, again.output  # its input is met in the bucket now
    assert list(tmp_path.iterdir()) == []  # nothing local, no folder named after the URL


def test_a_root_runs_would_refuse_is_refused_before_the_api_starts(department, monkeypatch):
    """One line, exit 2, and no "Prefect API: ..." line before it: nothing was started."""
    monkeypatch.setenv("AIRNUB_DATA_ROOT", "s3://user:hunter2@bucket/root")
    done = CliRunner().invoke(app, ["run", department])
    assert done.exit_code == 2
    assert done.output.startswith("error: AIRNUB_DATA_ROOT: refused")
    assert len(done.output.strip().splitlines()) == 1 and "hunter2" not in done.output
