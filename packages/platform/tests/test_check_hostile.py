"""`airnub check` against a hostile department author: one line for each broken contract
or layer rule, never a traceback, never a wait."""

import pytest
from airnub_platform.check import check_repository
from airnub_platform.cli import app
from airnub_platform.scaffolding import render
from airnub_platform.testing import (
    append_to_flow,
    department_pyproject,
    importable_departments,
    planted_fifo,
    write_department_project,
)
from typer.testing import CliRunner

DEPT = "dept_chk_hostile"
LOOKALIKE = "records.js\u043en"  # a Cyrillic o
IMPORTS = "from airnub_core.contracts import consumes, produces\n"
FEED = IMPORTS + 'RECORDS = produces(__name__, "records.json")\n'
TASK = IMPORTS + 'EXTRA = produces(__name__, "from_task.json")\n'
TIDY = (
    IMPORTS
    + f"from {DEPT}.ingestion.feed.make_feed_flow_{DEPT} import RECORDS as BORROWED\n"
    + f'TWIN = consumes(__name__, "ingestion", "feed", "{LOOKALIKE}")\n'
    + "ALIAS = TWIN\n"
    + 'BROKEN = consumes(__name__, "ingestion", "broken", "x.json")\n'
    + 'EXTRA = consumes(__name__, "ingestion", "feed", "from_task.json")\n'
)
SUMS = (
    IMPORTS
    + 'BORROWED = consumes(__name__, "processing", "tidy", "records.json")\n'
    + "def later():\n"
    + '    return consumes(__name__, "ingestion", "feed", "late.json")\n'
)
LATE = '    return consumes(__name__, "ingestion", "feed", "late.json")'
DEMO = render("testing/demo_category.py.j2", action="make_sums")  # what write_department writes
LATE_LINE = (DEMO + SUMS).splitlines().index(LATE) + 1
SRC = f"packages/{DEPT}/src/{DEPT}"
FLOW = "make_{}_flow_" + DEPT + ".py"


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_check")
    categories = {"ingestion": ["feed", "broken", "quits"], "processing": ["tidy"],
                  "analysis": ["sums", "spare"]}  # fmt: skip
    folder = write_department_project(root, DEPT, "Hostile Team", categories)
    (folder / "pyproject.toml").write_text(department_pyproject(DEPT, "Hostile Team"))
    package = folder / "src" / DEPT
    for stage, category, text in (("ingestion", "feed", FEED), ("processing", "tidy", TIDY),
                                  ("analysis", "sums", SUMS)):  # fmt: skip
        append_to_flow(folder / "src", DEPT, stage, category, text)
    (package / "ingestion" / "broken" / FLOW.format("broken")).write_text("raise RuntimeError\n")
    # sys.exit(0) as check imports it: once, the whole check ended there, "passing"
    (package / "ingestion" / "quits" / FLOW.format("quits")).write_text("raise SystemExit(0)\n")
    for tasks, name, text in (
        (package / "ingestion" / "feed" / "tasks", "fetch", TASK),
        (package / "analysis" / "spare" / "tasks", "unused", "raise OSError('half-written')\n"),
        (package / "processing" / "tasks", "sneak", "__import__('airnub_platform')\n"),
    ):
        tasks.mkdir(exist_ok=True)
        (tasks / "__init__.py").touch()
        (tasks / f"{name}_task_{DEPT}.py").write_text(text)
    outside = root / "elsewhere"
    outside.mkdir()
    (outside / "__init__.py").touch()
    (outside / f"hidden_task_{DEPT}.py").write_text("import airnub_platform\n")
    (package / "analysis" / "tasks" / "linked").symlink_to(outside)
    fifo = package / "configs" / "variables" / "ingestion" / "feed.yaml"
    fifo.unlink()
    # whatever reads the FIFO by mistake reads "" at once, instead of waiting for ever
    with planted_fifo(fifo), importable_departments(folder / "src", {DEPT: "Hostile Team"}):
        report = check_repository(root, [DEPT])
    return [violation.show(root) for violation in report.violations]


EXPECTED = [
    (f"{SRC}/processing/tidy/{FLOW.format('tidy')}",
     "reads ingestion/feed 'records.js\\u043en', which ingestion/feed does not declare"
     " (it declares: from_task.json, records.json)"),
    (f"{SRC}/processing/tidy/{FLOW.format('tidy')}",
     "reads ingestion/broken x.json, but ingestion/broken does not load (see its own line)"),
    (f"{SRC}/analysis/sums/{FLOW.format('sums')}",
     "reads processing/tidy records.json, which processing/tidy does not declare"
     " (it declares: nothing)"),
    (f"{SRC}/analysis/sums/{FLOW.format('sums')}",
     f"line {LATE_LINE}: a contract declared inside later; declare it at the module's top"
     " level, where check and run read it"),
    (f"{SRC}/analysis/spare/tasks/unused_task_{DEPT}.py",
     "does not import: OSError: half-written"),
    (f"{SRC}/processing/tasks/sneak_task_{DEPT}.py", "imports airnub_platform, a platform tool"),
    (f"{SRC}/analysis/tasks/linked",
     "a symlink to a folder; department code lives in its package, where check reads it"),
    (f"{SRC}/configs/variables/ingestion/feed.yaml", "not a regular file"),
    (f"{SRC}/ingestion/quits/{FLOW.format('quits')}", "does not import: ImportError:"
     f" {DEPT}.ingestion.quits.make_quits_flow_{DEPT} exits on import (SystemExit: 0)"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "message"), EXPECTED)
def test_each_hostile_contract_or_layer_breach_is_one_line_naming_its_file(lines, path, message):
    assert f"{path}: {message}" in [line[: len(path) + 2 + len(message)] for line in lines], (
        "\n".join(lines)
    )


def test_a_contract_named_twice_is_reported_once_and_nothing_spans_lines(lines):
    about_twin = [line for line in lines if "records.js\\u043en" in line]
    assert len(about_twin) == 1
    assert not any("from_task.json, which" in line for line in lines)  # declared by a task
    assert all("\n" not in line and "Traceback" not in line for line in lines)


def test_check_refuses_a_department_it_has_no_folder_for():
    done = CliRunner().invoke(app, ["check", "dept_nowhere_at_all"])
    assert done.exit_code == 2, done.output
    assert done.output.startswith("error: unknown department 'dept_nowhere_at_all'; valid: ")
    assert len(done.output.strip().splitlines()) == 1
