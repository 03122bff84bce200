"""``airnub check`` on a department broken in many ways, and on the real ones."""

import sys
import textwrap

import pytest
from airnub_core import conventions
from airnub_core.storage import repository_root
from airnub_platform.check import check_repository
from airnub_platform.testing import department_pyproject, write_department

DEPT = "dept_broken"
PYPROJECT = department_pyproject(DEPT, "Broken Team")
PREFECT_YAML = f"""
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: /home/someone/checkout
deployments:
  - name: wrong-name
    entrypoint: {DEPT}.ingestion_flow_{DEPT}:ingestion_flow
    tags: [{DEPT}, ingestion]
    concurrency_limit: 1
    schedules: [{{cron: "0 6 * * *"}}]
  - name: dept-broken-processing
    entrypoint: {DEPT}.processing_flow_{DEPT}:no_such_flow
    tags: [{DEPT}, processing, airnub-managed]
    work_pool: {{name: dept-broken, image: any}}
"""
HAND_NAMED = """
from prefect import flow

@flow(name="Whatever I Like")
def make_named():
    return {}
"""

CONSUMER = """
from airnub_core.contracts import consumes

UNDECLARED = consumes(__name__, "ingestion", "no_config", "missing.json")
NOWHERE = consumes(__name__, "ingestion", "ghost", "x.json")
"""


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    folder = root / "packages" / DEPT
    src = folder / "src"
    write_department(src, DEPT, {"ingestion": ["good", "no_config", "named", "bad_config"]})
    package = src / DEPT
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "prefect.yaml").write_text(PREFECT_YAML)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_it.py").write_text(
        f"import {DEPT}.ingestion.good.make_good_flow_{DEPT}\n# no_config named bad_config\n"
    )
    variables = package / "configs" / "variables"
    (variables / "ingestion" / "no_config.yaml").unlink()
    (variables / "ingestion" / "bad_config.yaml").write_text("message: hi\nsurprise: 1\n")
    (variables / "ingestion" / "orphan.yaml").write_text("a: 1\n")
    named = package / "ingestion" / "named"
    (named / f"make_named_flow_{DEPT}.py").write_text(textwrap.dedent(HAND_NAMED))
    (package / "ingestion" / "good" / f"second_flow_{DEPT}.py").write_text("")
    (package / "ingestion" / "tasks" / "helpers.py").write_text("")
    (package / "ingestion" / "tasks" / f"tooling_task_{DEPT}.py").write_text(
        "from airnub_platform.check import check_repository\n"
    )
    (package / "ingestion" / "Bad-Name").mkdir()
    (package / "notes.txt").write_text("stray")
    (package / "analysis" / "untested").mkdir()
    (package / "analysis" / "untested" / "__init__.py").touch()
    (package / "analysis" / "untested" / f"make_untested_flow_{DEPT}.py").write_text(
        (package / "ingestion" / "no_config" / f"make_no_config_flow_{DEPT}.py").read_text()
        + CONSUMER
    )
    (package / f"processing_flow_{DEPT}.py").unlink()
    sys.path.insert(0, str(src))
    known = {**conventions.departments(), DEPT: "Broken Team"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conventions, "departments", lambda: known)
        report = check_repository(root, [DEPT])
    sys.path.remove(str(src))
    return {v.show(root) for v in report.violations}


SRC = f"packages/{DEPT}/src/{DEPT}"
EXPECTED = [
    (f"{SRC}/notes.txt", "unexpected here"),
    (f"{SRC}/processing_flow_{DEPT}.py", "missing: the processing stage orchestrator"),
    (f"{SRC}/ingestion/Bad-Name", "must be lowercase snake_case"),
    (f"{SRC}/ingestion/tasks/helpers.py", f"module names here end with _task_{DEPT}.py"),
    (f"{SRC}/ingestion/tasks/tooling_task_{DEPT}.py", "imports airnub_platform.check, a platform"
     " tool that a worker does not install"),
    (f"{SRC}/ingestion/good", "expected one <action>_flow_dept_broken.py category flow, found 2"),
    (f"{SRC}/configs/variables/ingestion/no_config.yaml", "config file not found"),
    (f"{SRC}/configs/variables/ingestion/bad_config.yaml", "surprise: Extra inputs"),
    (f"{SRC}/configs/variables/ingestion/orphan.yaml", "no category or task owns this file"),
    (f"{SRC}/ingestion/named/make_named_flow_{DEPT}.py",
     "flow name 'Whatever I Like' is not the derived 'Make Named (Broken Team)'"),
    (f"{SRC}/ingestion/named/make_named_flow_{DEPT}.py", "expected one settings model"),
    (f"{SRC}/analysis/untested",
     f"no test module imports {DEPT}.analysis.untested.make_untested_flow_{DEPT}"),
    (f"{SRC}/analysis/untested/make_untested_flow_{DEPT}.py", "reads ingestion/no_config"
     " missing.json, which ingestion/no_config does not declare (it declares: nothing)"),
    (f"{SRC}/analysis/untested/make_untested_flow_{DEPT}.py", "reads ingestion/ghost x.json, but"
     " ingestion/ghost is not a category here"),
    (f"{SRC}/ingestion/no_config",  # named in a comment, which is no test
     f"no test module imports {DEPT}.ingestion.no_config.make_no_config_flow_{DEPT}"),
    (f"packages/{DEPT}/prefect.yaml", "deployments[1].entrypoint"),
    (f"packages/{DEPT}/prefect.yaml", "pull[0].prefect.deployments.steps.set_working_directory"
     ".directory: an absolute path ties the deployments to one machine"),
    (f"packages/{DEPT}/prefect.yaml", "deployments[0].concurrency_limit: not supported"),
    (f"packages/{DEPT}/prefect.yaml", "deployments[1].work_pool.image: not supported"),
    (f"packages/{DEPT}/prefect.yaml", "deployments[0].schedules[0].slug: missing"),
]  # fmt: skip
# A file that differs from the generated one is one more line (test_prefect_yaml.py): here
# the unsupported keys above already say why it cannot be generated, so nothing repeats.


@pytest.mark.parametrize(("path", "message"), EXPECTED)
def test_each_mistake_is_reported_with_its_path(broken, path, message):
    assert any(line.startswith(f"{path}: ") and message in line for line in broken), "\n".join(
        sorted(broken)
    )


def test_a_file_that_cannot_be_generated_is_not_reported_twice(broken):
    lines = sorted(line for line in broken if line.startswith(f"packages/{DEPT}/prefect.yaml: "))
    assert len(lines) == len({line.split(":")[1].split()[0] for line in lines}), lines


def test_the_shipped_departments_follow_the_conventions():
    root = repository_root()
    assert root is not None
    report = check_repository(root)
    assert report.departments >= 1
    assert [v.show(root) for v in report.violations] == []
