"""Stage-aware scaffolds: what ``add_category --reads`` accepts and refuses, and a task
made ``--with-config`` wired into its category's flow, or the generator saying exactly
where to call it; ``remove_task`` takes the wiring out again.

The workspace is a copy holding a department of the test's own: two ingestion
categories (feed, other) and a processing one (tidy) reading feed."""

import keyword
import subprocess
import sys
from pathlib import Path

import pytest
from airnub_core import inventory
from airnub_platform.scaffolding import TASKS_MARKER, render
from airnub_platform.testing import OWNED, clean_env, generate
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the generators, beside us
import scaffold
import upstream
import wiring

DEPT = "dept_staged"
IN_DEPT = ["--department", DEPT]
SRC = Path("packages") / DEPT / "src" / DEPT
FEED_FLOW = SRC / "ingestion" / "feed" / f"ingest_feed_flow_{DEPT}.py"
TIDY_FLOW = SRC / "processing" / "tidy" / f"process_tidy_flow_{DEPT}.py"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


@pytest.fixture(scope="module")
def workspace(new_copy) -> Path:
    root = new_copy("stage-scaffolds")
    generate(root, "add_department", "--id", DEPT, "--name", "Staged Team", *OWNED)
    made = [("ingestion", "feed"), ("ingestion", "other"),
            ("processing", "tidy", "--reads", "ingestion/feed")]  # fmt: skip
    for stage, category, *more in made:
        generate(root, "add_category", *IN_DEPT, "--stage", stage, "--id", category, *more)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", DEPT], cwd=root, check=True)
    return root


def new_category(stage: str, *reads: str) -> list[str]:
    return [*IN_DEPT, "--stage", stage, "--id", "fresh", *reads]


REFUSED = [
    (new_category("processing"), f"--reads: {DEPT} has several ingestion categories (feed,"
     " other) to read from; name one: --reads STAGE/CATEGORY[:NAME]"),
    (new_category("processing", "--reads", "ingestion/nope"),
     f"--reads: unknown ingestion category of {DEPT} 'nope'; valid: feed, other"),
    (new_category("processing", "--reads", "analysis/tidy"),
     "--reads: analysis/tidy is not in a stage before processing"),
    (new_category("processing", "--reads", "processing/tidy"),
     "--reads: processing/tidy is not in a stage before processing"),
    (new_category("processing", "--reads", "ingestion/feed:records.json"),
     "--reads: ingestion/feed declares no output 'records.json'; it declares: manifest.json"),
    (new_category("processing", "--reads", "ingestion/feed:../feed/manifest.json"),
     "--reads: ingestion/feed declares no output '../feed/manifest.json'"),
    (new_category("analysis", "--reads", "processing/tidy:rejected.json"),
     "--reads: processing/tidy rejected.json: the analysis template reads a CSV table (*.csv)"
     " or a download manifest (manifest.json) only"),
    (new_category("processing", "--reads", "ingestion"),
     "--reads: 'ingestion' is not STAGE/CATEGORY[:NAME]"),
    (new_category("processing", "--reads", "ingestion/feed:"),
     "--reads: 'ingestion/feed:' names no output after ':'"),
    (new_category("processing", "--reads", "loading/feed"), "--reads: unknown stage 'loading'"),
    (new_category("processing", "--reads", "ingestion/../feed"),
     "--reads: category '../feed' must be lowercase snake_case"),
    (new_category("ingestion", "--reads", "ingestion/feed"),
     "--reads: an ingestion category reads its configured sources, not another category"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_a_bad_reads_is_refused_in_one_line_and_writes_nothing(
    workspace, run_generator, tree_state, args, message
):
    before = tree_state(workspace)
    done = run_generator(workspace, "add_category", *args)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert tree_state(workspace) == before


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (
            "raise RuntimeError('broken on purpose\\nsecond line')",
            "RuntimeError: broken on purpose",
        ),
        ("import sys; sys.exit(3)", "SystemExit: 3"),
        ("def (:", "SyntaxError: invalid syntax"),
    ],
)
def test_an_upstream_that_does_not_load_is_named_in_one_line(
    workspace, run_generator, tree_state, code, why
):
    flow = workspace / SRC / "ingestion" / "other" / f"ingest_other_flow_{DEPT}.py"
    original = flow.read_text()
    flow.write_text(f"{original}\n{code}\n")
    try:
        before = tree_state(workspace)
        reads = new_category("processing", "--reads", "ingestion/other")
        done = run_generator(workspace, "add_category", *reads)
        after = tree_state(workspace)
    finally:
        flow.write_text(original)
    assert done.returncode == 1
    assert done.stderr.startswith("error: --reads: ingestion/other does not load (")
    assert why in done.stderr and len(done.stderr.splitlines()) == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert after == before


def test_the_default_upstream_is_the_only_category_of_the_stage_before(
    workspace, run_generator, tree_state
):
    before = tree_state(workspace)
    done = run_generator(workspace, "add_category", *new_category("analysis"), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"create {SRC}/analysis/fresh/analyze_fresh_flow_{DEPT}.py" in done.stdout
    assert "sample_data" not in done.stdout  # only an ingestion category reads a sample
    assert tree_state(workspace) == before


# --- wiring a task into its category's flow -------------------------------------------


def task_args(stage: str, category: str, task: str) -> list[str]:
    return [*IN_DEPT, "--stage", stage, "--category", category, "--id", task]


def test_a_task_with_config_is_wired_in_and_remove_task_takes_it_out(
    workspace, run_generator, tree_state
):
    before = tree_state(workspace)
    done = run_generator(workspace, "add_task", *task_args("ingestion", "feed", "tally"),
                         "--with-config")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wired: {FEED_FLOW} calls tally(outputs)" in done.stdout
    text = (workspace / FEED_FLOW).read_text()
    assert f"\nfrom .tasks.tally_task_{DEPT} import tally\n" in text
    assert f"    tally(outputs)\n    {TASKS_MARKER}\n    return " in text

    done = run_generator(workspace, "remove_task", *task_args("ingestion", "feed", "tally"))
    assert done.returncode == 0, done.stderr
    assert f"edited  {FEED_FLOW}" in done.stdout
    assert tree_state(workspace) == before


def without_marker(text: str) -> str:
    return text.replace(f"    {TASKS_MARKER}\n", "")


def marker_in_a_block(text: str) -> str:
    return text.replace(f"    {TASKS_MARKER}\n", f"    if outputs:\n        {TASKS_MARKER}\n"
                        "        pass\n")  # fmt: skip


def marker_in_a_string(text: str) -> str:
    return text.replace(f"    {TASKS_MARKER}\n", f'    """\n    {TASKS_MARKER}\n    """\n')


@pytest.mark.parametrize(
    ("change", "task", "why", "imported"),
    [
        (without_marker, "tally", f"it has no {TASKS_MARKER!r} line", "tally"),
        (marker_in_a_block, "tally", f"its {TASKS_MARKER!r} line is not in the body", "tally"),
        (marker_in_a_string, "tally", f"its {TASKS_MARKER!r} line is not in the body", "tally"),
        (lambda text: text, "read_upstream", "the name read_upstream is taken there",
         "read_upstream as read_upstream_task"),
    ],
)  # fmt: skip
def test_where_it_cannot_be_wired_it_says_where_to_call_it(
    workspace, run_generator, tree_state, change, task, why, imported
):
    """The flow is left as it is; the two printed lines, added where they say, make a
    wiring that remove_task recognises and takes out again."""
    initial = tree_state(workspace)
    flow = workspace / TIDY_FLOW
    original = flow.read_text()
    changed = change(original)
    flow.write_text(changed)
    args = task_args("processing", "tidy", task)
    try:
        done = run_generator(workspace, "add_task", *args, "--with-config")
        assert done.returncode == 0, done.stderr
        assert flow.read_text() == changed
        assert f"note: {task} is called by nothing yet: {TIDY_FLOW}: {why}" in done.stdout
        import_at, call_at = printed_lines(done.stdout, task, imported)
        lines = changed.splitlines(keepends=True)
        assert lines[call_at - 1].lstrip().startswith("return {")
        assert lines[import_at - 2].startswith(("from ", "import ", ")"))  # the last import
        if task == "tally":  # as add_task would have written it
            lines.insert(call_at - 1, "    tally(outputs)\n")
            lines.insert(import_at - 1, f"from .tasks.tally_task_{DEPT} import tally\n")
            flow.write_text("".join(lines))
        done = run_generator(workspace, "remove_task", *args)
        assert done.returncode == 0, done.stderr
        assert flow.read_text() == changed
    finally:
        flow.write_text(original)
    assert tree_state(workspace) == initial


def printed_lines(stdout: str, task: str, imported: str) -> tuple[int, int]:
    """The line numbers of the printed ``file:line: code`` instructions."""
    found = {}
    for line in stdout.splitlines():
        where, _, code = line.strip().partition(": ")
        if where.startswith(f"{TIDY_FLOW}:"):
            found[code.split("  (")[0]] = int(where.rsplit(":", 1)[1])
    call = f"{imported.rsplit(' as ', 1)[-1]}(outputs)"
    return found[f"from .tasks.{task}_task_{DEPT} import {imported}"], found[call]


SITECUSTOMIZE = """
import os, signal
_replace = os.replace
def replace(src, dst, *args, **kwargs):
    _replace(src, dst, *args, **kwargs)
    if str(dst).endswith({target!r}):  # the flow's edit is in place: die, no handler runs
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
"""


def test_killed_after_editing_the_flow_the_next_generator_undoes_it_all(
    workspace, run_generator, tree_state, tmp_path
):
    before = tree_state(workspace)
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE.format(target=FEED_FLOW.name))
    killed = run_generator(workspace, "add_task", *task_args("ingestion", "feed", "tally"),
                           "--with-config", env=clean_env(PYTHONPATH=str(tmp_path)))  # fmt: skip
    assert killed.returncode == -9
    assert "tally(outputs)" in (workspace / FEED_FLOW).read_text()  # half done: edited

    done = run_generator(workspace, "add_task", "--department", "dept_nope", "--stage",
                         "ingestion", "--id", "x")  # fmt: skip
    assert done.stdout.startswith("note: undid an interrupted add_task ")
    assert f"restored {FEED_FLOW}" in done.stdout
    assert done.returncode == 1 and "unknown department 'dept_nope'" in done.stderr
    assert tree_state(workspace) == before


# --- in-process: the upstream lookup and the wiring, for any input ---------------------


@pytest.fixture
def staged_tree(make_department):
    """A department with ingestion feed (declaring table.csv and notes.txt), other
    (declaring nothing) and processing tidy; no analysis category."""
    folder = make_department("dept_lookup", {"ingestion": ["feed", "other"],
                                             "processing": ["tidy"]})  # fmt: skip
    feed = folder / "src" / "dept_lookup" / "ingestion" / "feed" / "make_feed_flow_dept_lookup.py"
    declared = "\nfrom airnub_core.contracts import produces\n\n"
    declared += 'TABLE = produces(__name__, "table.csv")\nNOTES = produces(__name__, "notes.txt")\n'
    feed.write_text(feed.read_text() + declared)
    return inventory.department("dept_lookup")


def test_the_lookup_reads_what_the_upstream_declares(staged_tree):
    found = upstream.resolve(staged_tree, "processing", "ingestion/feed")
    assert (found.stage, found.category, found.name, found.kind) == (
        "ingestion",
        "feed",
        "table.csv",
        "table",
    )
    assert (found.package, found.leaf, found.flow) == (
        "dept_lookup.ingestion.feed",
        "make_feed_flow_dept_lookup",
        "make_feed",
    )
    assert upstream.resolve(staged_tree, "analysis", "ingestion/feed:table.csv") == found


@pytest.mark.parametrize(
    ("stage", "value", "message"),
    [
        ("analysis", "processing/tidy", "processing/tidy declares no output that the analysis"
         " template can read (a CSV table (*.csv) or a download manifest (manifest.json));"
         " it declares: nothing; name one: --reads processing/tidy:NAME"),
        ("processing", "ingestion/other", "it declares: nothing"),
        ("processing", "ingestion/feed:notes.txt", "the processing template reads a CSV table"),
    ],
)  # fmt: skip
def test_the_lookup_refuses_an_output_it_cannot_read(staged_tree, stage, value, message):
    with pytest.raises(scaffold.ScaffoldError) as refused:
        upstream.resolve(staged_tree, stage, value)
    assert str(refused.value).startswith("--reads: ") and message in str(refused.value)


def test_no_category_to_read_from_is_named(make_department):
    make_department("dept_empty", {"analysis": ["sums"]})
    tree = inventory.department("dept_empty")
    with pytest.raises(scaffold.ScaffoldError) as refused:
        upstream.resolve(tree, "processing", None)
    assert str(refused.value) == (
        "--reads: dept_empty has no ingestion category to read from; name one:"
        " --reads STAGE/CATEGORY[:NAME]"
    )


READS = st.one_of(
    st.text(max_size=30),
    st.builds(
        "{}/{}{}".format,
        st.sampled_from(["ingestion", "processing", "analysis", "", "x", "Ingestion"]),
        st.sampled_from(["feed", "other", "tidy", "", "../feed", "feed/x"]) | st.text(max_size=8),
        st.sampled_from(["", ":", ":table.csv", ":notes.txt", ":manifest.json"])
        | st.text(max_size=12).map(lambda name: f":{name}"),
    ),
)


def test_any_reads_value_is_found_or_refused_in_one_line(staged_tree):
    """Whatever follows --reads: an upstream the inventory has, or a one-line refusal
    naming --reads, never another exception."""

    @given(READS, st.sampled_from(["processing", "analysis"]))
    def attempt(value: str, stage: str) -> None:
        try:
            found = upstream.resolve(staged_tree, stage, value)
        except scaffold.ScaffoldError as refused:
            message = str(refused)
            assert message.startswith("--reads: ") and "\n" not in message and "\r" not in message
            return
        category = staged_tree.category(f"{found.stage}/{found.category}")
        assert category is not None
        assert found.name in {output.name for output in category.contracts[1]}

    attempt()


@pytest.mark.parametrize("stage", ["ingestion", "processing", "analysis"])
@pytest.mark.parametrize("with_subflows", [False, True])
@given(
    task=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(
        lambda name: not keyword.iskeyword(name)
    )
)
def test_wiring_then_unwiring_gives_back_the_flow(stage, with_subflows, task):
    """Every flow template, wired with any task name it does not already use: the call
    lands in the flow's body, and unwiring restores the exact text."""
    source = rendered_flow(stage, with_subflows)
    how = wiring.Wiring(task, f"{task}_task_dept_any")
    try:
        wired = wiring.wire(source, how)
    except wiring.NotWired as why:
        assert "is taken there" in str(why)  # a keyword or a name the template binds
        return
    assert f"    {how.call}\n    {TASKS_MARKER}\n" in wired
    assert wiring.unwire(wired, how) == source


def rendered_flow(stage: str, with_subflows: bool) -> str:
    reads = None if stage == "ingestion" else upstream.Upstream(
        "ingestion", "feed", "manifest.json", "dept_any.ingestion.feed.ingest_feed_flow_dept_any",
        "ingest_feed")  # fmt: skip
    return render(f"category/{stage}/flow.py.j2", department="dept_any", stage=stage,
                  category="tidy", flow_function="make_tidy", flow_module="make_tidy_flow_dept_any",
                  with_subflows=with_subflows, subflow_suffix="_subflow_dept_any",
                  upstream=reads)  # fmt: skip
