"""`airnub list` and `--graph` (and the docs hook's page) against hostile names: folders
named like markup, Mermaid syntax or with a line break, display names holding Markdown
links, output names holding backticks, and a department whose package does not import."""

import re

import pytest
from airnub_core import inventory
from airnub_platform.cli import app
from airnub_platform.graph import _node_id, _text, markdown, mermaid
from airnub_platform.testing import append_to_flow, importable_departments, write_department
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

DEPT, BROKEN = "dept_drawn_hostile", "dept_drawn_broken"
DISPLAY = "Ops [click](javascript:alert(1)) `x`"  # check_display_name accepts it
FOLDERS = ["[reverse]x", "a b", "a\nb", "a-b", "x]; B-->C", "\x1b[2Jclear"]
PRODUCER = (
    "\nfrom airnub_core.contracts import produces\n\n"
    'OUT = produces(__name__, "a`b`<x> --8<-- \\"c\\".csv")\n'
)
CONSUMER = (
    "\nfrom airnub_core.contracts import consumes\n\n"
    'FEED = consumes(__name__, "ingestion", "feed", "a`b`<x> --8<-- \\"c\\".csv")\n'
)
# Every line a Mermaid block may hold here: ids are words, labels quoted without quotes.
STATEMENT = re.compile(
    r'flowchart LR|  %% [^\n`<]*|  subgraph \w+\["\w+"\]|    \w+\["[^"`<>\n]*"\]|  end'
    r'|  \w+ -->\|"[^"`<>\n]*"\| \w+'
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("drawn_hostile")
    write_department(root, DEPT, {"ingestion": ["feed"], "processing": ["tidy"]})
    append_to_flow(root, DEPT, "ingestion", "feed", PRODUCER)
    append_to_flow(root, DEPT, "processing", "tidy", CONSUMER)
    for name in FOLDERS:
        (root / DEPT / "ingestion" / name).mkdir()
        (root / DEPT / "ingestion" / name / "__init__.py").touch()
    write_department(root, BROKEN, {})
    (root / BROKEN / "__init__.py").write_text("raise RuntimeError('[red]\\x1b[2J<b>')\n")
    with importable_departments(root, {DEPT: DISPLAY, BROKEN: "Broken Team"}):
        yield root


@pytest.mark.usefixtures("root")
def test_every_line_of_the_graph_is_a_statement_whatever_the_folder_names():
    lines = mermaid(inventory.department(DEPT)).splitlines()
    assert [line for line in lines if not STATEMENT.fullmatch(line)] == []
    assert len([line for line in lines if line.startswith("    ")]) == 2 + len(FOLDERS)
    edge = (
        '  ingestion__feed -->|"a#96;b#96;#lt;x#gt; --8#lt;-- #quot;c#quot;.csv"| processing__tidy'
    )
    assert edge in lines


@pytest.mark.usefixtures("root")
def test_the_page_shows_a_display_name_and_a_broken_department_as_text_only():
    trees, unreadable = inventory.readable([DEPT, BROKEN])
    page = markdown(trees, unreadable)
    assert page.startswith(
        "### Ops \\[click\\](javascript:alert(1)) `x` (`dept_drawn_hostile`)\n\n```mermaid\n"
    )
    assert page.count("```") == 2 and "--8<--" not in page and "<b>" not in page
    assert page.endswith(
        f"### `{BROKEN}`\n\nNot drawn: {BROKEN}: its package does not import"
        " (RuntimeError: \\[red\\]\\\\x1b\\[2J&lt;b&gt;)\n"
    )


@pytest.mark.usefixtures("root")
def test_list_shows_every_name_as_text_and_a_broken_department_in_red_exit_1():
    done = CliRunner().invoke(app, ["list", DEPT, BROKEN])
    assert done.exit_code == 1, done.output
    assert "\x1b" not in done.output  # no escape sequence reaches the terminal
    for shown in ("[reverse]x", "a\\nb", "x]; B-->C", "\\x1b[2Jclear", DISPLAY):
        assert shown in done.output
    assert f"{BROKEN}: {BROKEN}: its package does not import" in done.output
    graph = CliRunner().invoke(app, ["list", DEPT, BROKEN, "--graph"])
    assert graph.exit_code == 1 and "Not drawn:" in graph.output


@given(st.text())
def test_any_text_becomes_one_line_of_label_and_any_name_a_word_id(text):
    label = _text(text)
    assert label.isprintable() and not set(label) & set('"`<>')
    assert re.fullmatch(r"\w+", _node_id("ingestion", text or "x"), re.ASCII)
