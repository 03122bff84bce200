"""A department's prefect.yaml is generated from the conventions: a snapshot of what a new
department gets, the user's keys surviving every rewrite, hand edits of derived keys
undone, and hostile files refused in one line with nothing written."""

import itertools
import os
from pathlib import Path

import pytest
import yaml
from airnub_core import conventions
from airnub_platform.check import check_repository
from airnub_platform.prefect_yaml import MAX_BYTES, PrefectYamlError, difference, render, write
from airnub_platform.testing import department_pyproject
from hypothesis import given
from hypothesis import strategies as st

_ids = itertools.count()
# What a new department gets, byte for byte. A change here changes every department's
# file: `airnub check` then asks for `airnub deployments write`.
GOLDEN = """\
# Deployments of dept_golden, generated from the conventions by
#   airnub deployments write dept_golden
# `airnub check` fails while this file differs from what that command writes. `airnub
# deploy` writes the same deployments as `prefect --no-prompt deploy --all` run here.
# Derived, rewritten on every write: name, prefect-version, and each deployment's name,
# entrypoint, description, tags and work_pool.name.
# Yours, kept as written (matched by entrypoint): pull, and each deployment's schedules,
# parameters, work_pool.job_variables and work_pool.work_queue_name. To deploy a single
# category too, add an entry holding only its flow's entrypoint, e.g.
#   dept_golden.<stage>.<category>.<action>_flow_dept_golden:<flow>
# and write again. Comments are the generator's: any other comment is not kept.
name: dept-golden
prefect-version: ">=3.9,<3.10"
# Pull steps (yours): none needed, as entrypoints are module paths, so a worker runs them
# wherever the package is installed. Without this key `prefect deploy` would pin this
# checkout's absolute path as every run's working directory.
pull: []

deployments:
  - name: dept-golden-ingestion
    entrypoint: dept_golden.ingestion_flow_dept_golden:ingestion_flow
    description: The ingestion stage of dept_golden.
    tags: [dept_golden, ingestion, airnub-managed]
    work_pool:
      name: dept-golden
      job_variables:
        env:
          AIRNUB_ENV: local  # which <name>.<env>.yaml config overlays the runs use
    schedules:
      - cron: "0 6 * * *"
        timezone: UTC
        slug: daily  # so a redeploy updates this schedule in place instead of replacing it
        active: false  # an example schedule, off until the department switches it on
  - name: dept-golden-processing
    entrypoint: dept_golden.processing_flow_dept_golden:processing_flow
    description: The processing stage of dept_golden.
    tags: [dept_golden, processing, airnub-managed]
    work_pool:
      name: dept-golden
      job_variables:
        env:
          AIRNUB_ENV: local  # which <name>.<env>.yaml config overlays the runs use
  - name: dept-golden-analysis
    entrypoint: dept_golden.analysis_flow_dept_golden:analysis_flow
    description: The analysis stage of dept_golden.
    tags: [dept_golden, analysis, airnub-managed]
    work_pool:
      name: dept-golden
      job_variables:
        env:
          AIRNUB_ENV: local  # which <name>.<env>.yaml config overlays the runs use
"""


def new_department(make_department, prefect_yaml: str | None = None) -> tuple[str, Path]:
    """A fresh department (its own id: Python caches modules by name) with a category in
    ingestion, its prefect.yaml the generated one unless given."""
    dept = f"dept_yaml_{next(_ids)}"
    folder = make_department(dept, {"ingestion": ["feed"]}, prefect_yaml=prefect_yaml)
    display = conventions.humanize(dept.removeprefix(conventions.DEPARTMENT_PREFIX))
    (folder / "pyproject.toml").write_text(department_pyproject(dept, display))
    return dept, folder


def feed(dept: str) -> str:
    return f"{dept}.ingestion.feed.make_feed_flow_{dept}:make_feed"


def yaml_violations(folder: Path) -> list[str]:
    """What `airnub check` says about the department's prefect.yaml."""
    root = folder.parent.parent
    report = check_repository(root, [folder.name])
    shown = [v.show(root) for v in report.violations]
    return [line for line in shown if line.startswith(f"packages/{folder.name}/prefect.yaml")]


# -- the snapshot ---------------------------------------------------------------------


def test_a_new_department_gets_exactly_the_golden_file(make_department):
    folder = make_department("dept_golden", {"ingestion": ["feed"]})
    (folder / "pyproject.toml").write_text(department_pyproject("dept_golden", "Golden Team"))
    assert (folder / "prefect.yaml").read_text() == GOLDEN
    assert render("dept_golden", None) == render("dept_golden", "") == GOLDEN
    assert write("dept_golden") is False  # already what the generator writes
    assert yaml_violations(folder) == []


def test_rendering_a_rendered_file_changes_nothing():
    once = render("dept_again", f"deployments:\n  - entrypoint: {feed('dept_again')}\n")
    assert render("dept_again", once) == once
    assert render("dept_again", once.replace("\n", "\n\n")) == once  # layout is the generator's


# -- the user's keys ------------------------------------------------------------------

OVERRIDES = """
pull:
  - prefect.deployments.steps.run_shell_script:
      script: echo ready
deployments:
  # my own comment, which the generator does not keep
  - entrypoint: {feed}
    parameters: {{overrides: {{message: from the deployment}}, "when": 2024-05-01}}
    work_pool: {{name: ops-prod, work_queue_name: nightly}}
  - name: anything
    entrypoint: {dept}.ingestion_flow_{dept}:ingestion_flow
    work_pool:
      name: wrong-pool
      job_variables: {{env: {{AIRNUB_ENV: prod, EXTRA: "1"}}, working_dir: /srv/runs}}
    schedules:
      - {{interval: 3600, slug: hourly, parameters: {{categories: [feed]}}}}
      - {{rrule: "FREQ=WEEKLY;BYDAY=MO", slug: weekly, active: true, timezone: Europe/Dublin}}
  - entrypoint: {dept}.analysis_flow_{dept}:analysis_flow
    work_pool: {{}}
"""


def test_every_key_of_the_users_survives_and_every_derived_one_is_regenerated():
    dept = "dept_keep"
    source = OVERRIDES.format(dept=dept, feed=feed(dept))
    given_data = yaml.safe_load(source)
    text = render(dept, source)
    data = yaml.safe_load(text)
    assert data["pull"] == given_data["pull"]
    ingestion, processing, analysis, category = data["deployments"]
    assert ingestion["schedules"] == given_data["deployments"][1]["schedules"]
    assert ingestion["work_pool"] == {
        "name": "dept-keep",  # derived, whatever the file said
        "job_variables": given_data["deployments"][1]["work_pool"]["job_variables"],
    }
    assert ingestion["name"] == "dept-keep-ingestion"
    # a stage the file did not list gets the defaults; one listed without them keeps none
    assert processing["work_pool"]["job_variables"] == {"env": {"AIRNUB_ENV": "local"}}
    assert analysis["work_pool"] == {"name": "dept-keep"}
    assert category == {
        "name": "dept-keep-ingestion-feed",
        "entrypoint": feed(dept),
        "description": f"The feed category of the ingestion stage of {dept}.",
        "tags": [dept, "ingestion", "feed", "airnub-managed"],
        "work_pool": {"name": "dept-keep", "work_queue_name": "nightly"},
        "parameters": given_data["deployments"][0]["parameters"],
    }
    assert "my own comment" not in text
    assert render(dept, text) == text


def test_a_derived_key_edited_by_hand_is_restored_and_check_names_it(make_department):
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    generated = path.read_text()
    edits = {
        "name: dept-yaml": "name: renamed",
        f"  - name: {dept.replace('_', '-')}-processing": "  - name: my-processing",
        f"tags: [{dept}, analysis, airnub-managed]": f"tags: [{dept}, analysis]",
        "description: The ingestion stage": "description: Mine, the ingestion stage",
        f"      name: {dept.replace('_', '-')}\n": "      name: elsewhere\n",
    }
    for old, new in edits.items():
        assert old in generated, old
        path.write_text(generated.replace(old, new, 1))
        assert render(dept, path.read_text()) == generated
        [line] = yaml_violations(folder)
        assert line.endswith(f"; run `airnub deployments write {dept}`"), line
        assert "\n" not in line
        assert write(dept) is True
        assert path.read_text() == generated
        assert write(dept) is False
    assert yaml_violations(folder) == []


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text, dept: text.replace("name: dept-yaml", "name: renamed", 1), "name is not"
         " the generated 'dept-yaml-"),
        (lambda text, dept: text.replace(f"{dept}, processing, airnub-managed",
                                         f"{dept}, processing"),
         "deployments[1].tags is not the generated"),
        (lambda text, dept: text[: text.index("  - name: dept-yaml-") ] + "  []\n",
         "deployments[0]: missing (the generated file deploys 'dept-yaml-"),
        (lambda text, dept: "# mine\n" + text, "line 1 is not as generated (layout or comments)"),
    ],
)  # fmt: skip
def test_check_names_the_first_difference_in_one_line(make_department, edit, named):
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    path.write_text(edit(path.read_text(), dept))
    [line] = yaml_violations(folder)
    assert f"packages/{dept}/prefect.yaml: " in line and named in line, line


def test_a_missing_file_is_written_from_scratch(make_department):
    dept, folder = new_department(make_department)
    generated = (folder / "prefect.yaml").read_text()
    (folder / "prefect.yaml").unlink()
    [line] = yaml_violations(folder)
    assert line.endswith(f"missing: the department's deployments; run `airnub deployments write"
                         f" {dept}`")  # fmt: skip
    assert write(dept) is True
    assert (folder / "prefect.yaml").read_text() == generated


# Parameters as a user might write them: any JSON-like value under any text key.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    parameters=st.dictionaries(st.text(), json_values, min_size=1, max_size=4),
    queue=st.text(min_size=1),
    env=st.dictionaries(st.text(min_size=1), st.text(), min_size=1, max_size=3),
)
def test_whatever_the_user_writes_reads_back_unchanged_and_renders_stably(parameters, queue, env):
    dept = "dept_property"
    entry = {
        "entrypoint": feed(dept),
        "parameters": parameters,
        "work_pool": {"work_queue_name": queue, "job_variables": {"env": env}},
    }
    text = render(dept, yaml.safe_dump({"deployments": [entry]}))  # escaped: read back as is
    category = yaml.safe_load(text)["deployments"][3]
    assert category["parameters"] == parameters
    assert category["work_pool"] == {
        "name": "dept-property",
        "work_queue_name": queue,
        "job_variables": {"env": env},
    }
    assert render(dept, text) == text
    assert difference(dept, text) is None


# -- hostile files --------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]\n" for n in range(8)
)
HOSTILE = {
    "not a mapping": (b"- a\n- b\n", "must be a mapping with a deployments list, not list"),
    "deployments not a list": (b"deployments: {a: 1}\n",
                               "deployments: must be a list of deployments, not mapping"),
    "an entry not a mapping": (b"deployments:\n  - just text\n", "deployments[0]: must be a"
                               " mapping"),
    "an entrypoint outside": (b"deployments:\n  - entrypoint: dept_other.ingestion_flow_dept_other"
                              b":ingestion_flow\n", "deployments[0].entrypoint: 'dept_other."),
    "an entrypoint by path": (b"deployments:\n  - entrypoint: {dept}/ingestion.py:flow\n",
                              "deployments[0].entrypoint: "),
    "a task as entrypoint": (b"deployments:\n  - entrypoint: {dept}.ingestion.tasks.x_task_{dept}"
                             b":x\n", "deployments[0].entrypoint: "),
    "a subflow as entrypoint": (b"deployments:\n  - entrypoint: {dept}.ingestion.feed.subflows."
                                b"x_subflow_{dept}:x\n", "deployments[0].entrypoint: "),
    "no entrypoint": (b"deployments:\n  - name: x\n", "deployments[0].entrypoint: missing"),
    "a flow deployed twice": (b"deployments:\n  - entrypoint: {dept}.analysis_flow_{dept}:a\n"
                              b"  - entrypoint: {dept}.analysis_flow_{dept}:b\n",
                              "deployments[1].entrypoint: deploys the flow deployments[0]"),
    "an unsupported key": (b"token: s3cr3t-value\n", "token: not supported"),
    "an unsupported deployment key": (b"deployments:\n  - entrypoint: {dept}.analysis_flow_{dept}"
                                      b":a\n    concurrency_limit: 1\n",
                                      "deployments[0].concurrency_limit: not supported"),
    "something to build": (b"build: [{step: 1}]\n", "build: must be empty"),
    "pull not a list": (b"pull: here\n", "pull: must be a list of steps"),
    "schedules not a list": (b"deployments:\n  - entrypoint: {dept}.analysis_flow_{dept}:a\n"
                             b"    schedules: {cron: x}\n",
                             "deployments[0].schedules: must be a list, not mapping"),
    "a billion laughs": (LAUGHS.encode(), "line 2: an alias (*a)"),
    "an alias to itself": (b"a: &a [*a]\n", "line 1: an alias (*a)"),
    "nested too deep": (b"[" * 5000 + b"]" * 5000, "line 1: nested more than 32 deep"),
    "a megabyte": (b"# " + b"x" * (1 << 20) + b"\n", f"larger than {MAX_BYTES // 1024} KiB"),
    "not UTF-8": (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9)"),
    "UTF-16": ("name: x\n".encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    "a NUL byte": (b"name: a\x00b\n", "invalid YAML"),
    "a Python object": (b"name: !!python/object/apply:os.system [echo hi]\n", "invalid YAML"),
    "broken YAML": (b"deployments: [\n", "invalid YAML at line 2"),
    "an impossible date": (b"name: 2001-02-30\n", "invalid YAML"),
    "two documents": (b"a: 1\n---\nb: 2\n", "invalid YAML"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_one_line_naming_it_and_nothing_is_written(make_department, case):
    content, expected = HOSTILE[case]
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    content = content.replace(b"{dept}", dept.encode())
    path.write_bytes(content)
    with pytest.raises(PrefectYamlError) as raised:
        write(dept)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "\n" not in message and "s3cr3t" not in message and len(message) < len(str(path)) + 250
    assert path.read_bytes() == content
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp left
    lines = yaml_violations(folder)  # each field named once, by whichever rule comes first
    assert lines and all("\n" not in line and "s3cr3t" not in line for line in lines)
    fields = [line.split(": ", 1)[1].split(":")[0].split(" ")[0] for line in lines]
    assert len(fields) == len(set(fields)), lines


def test_a_fifo_is_refused_without_waiting_for_a_writer(make_department):
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(PrefectYamlError, match=r"prefect\.yaml: not a regular file"):
        write(dept)
    assert path.is_fifo()


def test_a_symlinked_file_is_never_written_through(make_department, tmp_path):
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("pull: []\n")
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(PrefectYamlError, match=r"prefect\.yaml: cannot be written: "):
        write(dept)
    assert elsewhere.read_text() == "pull: []\n" and path.is_symlink()


def test_a_read_only_folder_is_one_line_and_the_file_stays(make_department):
    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    path.write_text(path.read_text().replace("name: dept-yaml", "name: renamed", 1))
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        with pytest.raises(PrefectYamlError, match=r"prefect\.yaml: cannot be written: "):
            write(dept)
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before


def test_an_unknown_department_is_one_line():
    with pytest.raises(PrefectYamlError, match=r"^dept_nowhere_at_all: does not import"):
        write("dept_nowhere_at_all")
    with pytest.raises(PrefectYamlError, match=r"^Not-A-Department: department"):
        render("Not-A-Department", None)


# -- the command ------------------------------------------------------------------------


def test_airnub_deployments_write_restores_a_hand_edit_and_check_mode_reports_it(make_department):
    from airnub_platform.cli import app
    from typer.testing import CliRunner

    dept, folder = new_department(make_department)
    path = folder / "prefect.yaml"
    golden = path.read_text()
    path.write_text(golden.replace(f"- name: {dept.replace('_', '-')}-processing", "- name: x"))
    checked = CliRunner().invoke(app, ["deployments", "write", dept, "--check"])
    assert checked.exit_code == 1
    assert f"{dept}/prefect.yaml: deployments[1].name is not the generated" in checked.output
    assert path.read_text() != golden  # --check writes nothing
    written = CliRunner().invoke(app, ["deployments", "write", dept])
    assert (written.exit_code, path.read_text()) == (0, golden)
    assert "wrote: " in written.output
    again = CliRunner().invoke(app, ["deployments", "write", dept, "--check"])
    assert again.exit_code == 0, again.output


def test_airnub_deployments_write_refuses_a_hostile_file_in_one_line(make_department):
    from airnub_platform.cli import app
    from typer.testing import CliRunner

    dept, folder = new_department(make_department)
    (folder / "prefect.yaml").write_text("a: &a [x]\nb: *a\n")
    done = CliRunner().invoke(app, ["deployments", "write", dept])
    assert done.exit_code == 1
    assert len(done.output.strip().splitlines()) == 1 and "an alias (*a)" in done.output
    assert (folder / "prefect.yaml").read_text() == "a: &a [x]\nb: *a\n"
    unknown = CliRunner().invoke(app, ["deployments", "write", "dept_nowhere"])
    assert unknown.exit_code == 2 and "unknown department 'dept_nowhere'" in unknown.output
