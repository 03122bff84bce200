"""`airnub run` and its inputs against hostile plans and trees: several departments, a
category that several stages share, an upstream that is a folder or broken, a data root
behind a symlink or a file:// URL, and departments whose code does not import."""

from pathlib import Path

import pytest
from airnub_core import storage
from airnub_platform import runner
from airnub_platform.cli import app
from airnub_platform.testing import append_to_flow, importable_departments, write_department
from typer.testing import CliRunner

MET, UNMET, SHARED = "dept_run_met", "dept_run_unmet", "dept_run_shared"
BROKEN_PACKAGE, BROKEN_STAGE = "dept_run_no_package", "dept_run_no_stage"
IMPORTS = "\nfrom airnub_core.contracts import consumes, produces\n"
WRITES = IMPORTS + 'OUT = produces(__name__, "out.txt")\nFILES = produces(__name__, "files")\n'
READS = IMPORTS + 'FEED = consumes(__name__, "ingestion", "feed", "out.txt")\nAGAIN = FEED\n'
READS_FOLDER = IMPORTS + 'FILES = consumes(__name__, "ingestion", "feed", "files")\n'
# processing/feed reads ingestion/feed: `--category feed` runs both, the reader second
READS_SAME_NAME = IMPORTS + 'FEED = consumes(__name__, "ingestion", "feed", "out.txt")\n'


@pytest.fixture(scope="module")
def departments(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_hostile")
    for department in (MET, UNMET):
        write_department(root, department, {"ingestion": ["feed"], "processing": ["tidy"]})
        append_to_flow(root, department, "ingestion", "feed", WRITES)
        append_to_flow(root, department, "processing", "tidy", READS)
    categories = {"ingestion": ["feed", "broken"], "processing": ["feed", "folder", "lost"]}
    write_department(root, SHARED, categories)
    append_to_flow(root, SHARED, "ingestion", "feed", WRITES)
    append_to_flow(root, SHARED, "processing", "feed", READS_SAME_NAME)
    append_to_flow(root, SHARED, "processing", "folder", READS_FOLDER)
    append_to_flow(root, SHARED, "processing", "lost", "\nraise RuntimeError('lost')\n")
    names = {MET: "Met Team", UNMET: "Unmet Team", SHARED: "Shared Team"}
    with importable_departments(root, names):
        yield root


@pytest.fixture
def broken(tmp_path):
    """Departments whose code does not import: known for one test only, as a run of
    every department would stop at them."""
    write_department(tmp_path, BROKEN_PACKAGE, {})
    (tmp_path / BROKEN_PACKAGE / "__init__.py").write_text("raise ImportError('half\\nway')\n")
    write_department(tmp_path, BROKEN_STAGE, {})
    (tmp_path / BROKEN_STAGE / f"ingestion_flow_{BROKEN_STAGE}.py").write_text("def (:\n")
    with importable_departments(tmp_path, {BROKEN_PACKAGE: "No Package", BROKEN_STAGE: "No"}):
        yield


def _unmet(department: str, stage: str | None, category: str | None, **root) -> list[str]:
    return runner.unmet_inputs(department, runner.plan(department, stage, category), **root)


def _write(data_root: Path, department: str, name: str, text: str = "x") -> None:
    path = data_root / department / "ingestion" / "feed" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.usefixtures("departments")
def test_a_category_that_two_stages_share_is_met_by_its_own_earlier_stage():
    assert _unmet(SHARED, None, "feed") == []  # ingestion/feed runs first in this run
    assert _unmet(SHARED, "processing", "feed") == [
        "processing/feed needs ingestion/feed out.txt: run that category first"
        f" (airnub run {SHARED} ingestion --category feed)"
    ]


@pytest.mark.usefixtures("departments")
def test_an_input_declared_under_two_names_is_one_line():
    assert len(_unmet(MET, "processing", None)) == 1


@pytest.mark.usefixtures("departments")
def test_a_folder_input_is_met_once_its_producer_wrote_into_it(airnub_data_root):
    assert _unmet(SHARED, "processing", "folder") != []
    (airnub_data_root / SHARED / "ingestion" / "feed" / "files").mkdir(parents=True)
    assert _unmet(SHARED, "processing", "folder") != []  # empty: the producer failed
    _write(airnub_data_root, SHARED, "files/a.csv")
    assert _unmet(SHARED, "processing", "folder") == []


@pytest.mark.usefixtures("departments")
def test_a_category_that_does_not_import_is_left_to_its_stage_run_to_report():
    # before contracts, its stage failed naming it; the plan must not die of it instead
    assert _unmet(SHARED, "processing", "lost") == []


@pytest.mark.usefixtures("departments")
@pytest.mark.parametrize("spelling", ["symlink", "file_url"])
def test_the_data_root_may_be_a_symlink_or_a_file_url(tmp_path, monkeypatch, spelling):
    real = tmp_path / "real root"
    _write(real, MET, "out.txt")
    link = tmp_path / "link"
    link.symlink_to(real)
    configured = str(link) if spelling == "symlink" else link.as_uri()
    monkeypatch.setenv(storage.DATA_ROOT_ENV, configured)
    root = storage.data_root(use_block=True)
    assert root == real.resolve()
    assert _unmet(MET, "processing", None, root=root) == []
    assert _unmet(UNMET, "processing", None, root=root) != []


@pytest.mark.usefixtures("departments")
def test_category_over_several_departments_runs_where_it_exists_and_is_refused_if_nowhere():
    planned = runner.plans([MET, SHARED], None, "tidy")
    assert planned == {MET: {"processing": ["tidy"]}}  # SHARED has no tidy: left out
    with pytest.raises(runner.PlanError) as nowhere:
        runner.plans([MET, SHARED], None, "nowhere")
    assert str(nowhere.value) == (
        "unknown category 'nowhere'; valid: broken, feed, folder, lost, tidy"
    )
    with pytest.raises(runner.PlanError, match=f"unknown category of {MET} 'nowhere'; valid: "):
        runner.plans([MET], None, "nowhere")


@pytest.mark.usefixtures("departments", "broken")
def test_a_department_that_does_not_import_is_one_line_before_anything_runs():
    with pytest.raises(runner.PlanError) as package:
        runner.plans([MET, BROKEN_PACKAGE], None, None)
    assert str(package.value) == (
        f"{BROKEN_PACKAGE}: its package does not import (ImportError: half)"
    )
    with pytest.raises(runner.PlanError) as stage:
        runner.stage_flows(BROKEN_STAGE, ["ingestion"])
    assert str(stage.value).startswith(
        f"{BROKEN_STAGE}: the ingestion stage flow cannot be loaded (SyntaxError: "
    )


@pytest.mark.usefixtures("prefect_api", "departments")
def test_several_departments_are_all_checked_before_the_first_one_runs(airnub_data_root):
    _write(airnub_data_root, MET, "out.txt")  # MET's tidy could run; UNMET's could not
    done = CliRunner().invoke(app, ["run", "--category", "tidy"])
    assert done.exit_code == 2, done.output
    # Every installed department with a `tidy` runs here, the workspace's own included
    # (a user's, or the template check's generated one): only ours are asserted on.
    last = done.output.splitlines()[-1]
    assert last.startswith("error: ") and f"airnub run {MET} " not in last
    assert (
        "processing/tidy needs ingestion/feed out.txt: run that category first"
        f" (airnub run {UNMET} ingestion --category feed)"
    ) in last
    assert "Processing Flow" not in done.output  # nothing ran, MET's tidy neither
    assert not (airnub_data_root / MET / "processing").exists()


@pytest.mark.usefixtures("prefect_api", "broken")
@pytest.mark.parametrize(
    ("department", "message"),
    [
        (BROKEN_PACKAGE, f"error: {BROKEN_PACKAGE}: its package does not import (ImportError:"),
        (BROKEN_STAGE, f"error: {BROKEN_STAGE}: the ingestion stage flow cannot be loaded"),
    ],
)
def test_run_of_a_department_that_does_not_import_is_one_line_exit_2(department, message):
    done = CliRunner().invoke(app, ["run", department])
    assert done.exit_code == 2, done.output
    # one error line, after at most the plan (printed before the flows are imported)
    *planned, error = done.output.strip().splitlines()
    assert error.startswith(message) and all(line.startswith("will run ") for line in planned)
