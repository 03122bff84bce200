"""`airnub list --graph`: the contract graph as Mermaid, drawn from the inventory."""

import pytest
from airnub_core import inventory
from airnub_platform.graph import markdown, mermaid
from airnub_platform.testing import append_to_flow, importable_departments, write_department

DEPT = "dept_drawn"
HOSTILE = 'Ops "Team" {x} `#1`'  # what a display name may hold
PRODUCER = (
    '\nfrom airnub_core.contracts import produces\n\nOUT = produces(__name__, "a|b\\"c.csv")\n'
)
CONSUMER = (
    "\nfrom airnub_core.contracts import consumes\n\n"
    'FEED = consumes(__name__, "ingestion", "feed", "a|b\\"c.csv")\n'
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("drawn")
    write_department(root, DEPT, {"ingestion": ["feed", "other"], "analysis": ["sums"]})
    append_to_flow(root, DEPT, "ingestion", "feed", PRODUCER)
    append_to_flow(root, DEPT, "analysis", "sums", CONSUMER)
    (root / DEPT / "ingestion" / "other" / f"make_other_flow_{DEPT}.py").write_text("raise OSError")
    with importable_departments(root, {DEPT: HOSTILE}):
        yield inventory.department(DEPT)


def test_every_category_is_a_node_and_every_declared_input_an_edge(tree):
    lines = mermaid(tree).splitlines()
    assert lines[0] == "flowchart LR"
    assert '    ingestion__feed["feed"]' in lines
    assert '    analysis__sums["sums"]' in lines
    assert '  subgraph processing["processing"]' in lines  # an empty stage is still drawn
    edges = [line for line in lines if "-->" in line]
    assert edges == ['  ingestion__feed -->|"a|b#quot;c.csv"| analysis__sums']


def test_a_module_that_does_not_import_is_a_comment_not_a_crash(tree):
    assert "  %% ingestion/other: contracts unreadable (OSError)" in mermaid(tree).splitlines()


def test_user_text_cannot_break_out_of_labels_or_the_page(tree):
    page = markdown([tree])
    assert page.startswith('### Ops "Team" {x} `#1` (`dept_drawn`)\n\n```mermaid\n')
    assert page.count("```") == 2
    assert markdown([]) == "No departments are installed.\n"


def test_the_docs_hook_draws_every_installed_department_in_place_of_its_marker():
    import importlib.util

    from airnub_core.storage import repository_root

    root = repository_root()
    assert root is not None
    spec = importlib.util.spec_from_file_location("hook", root / "docs/hooks/contract_graphs.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = hook.on_page_markdown(f"before\n\n{hook.MARKER}\n\nafter\n")
    assert page.startswith("before\n\n") and page.endswith("\n\nafter\n")
    assert page.count("```mermaid\n") == len(inventory.departments())
    assert hook.on_page_markdown("no marker here") == "no marker here"
