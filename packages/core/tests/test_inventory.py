"""The inventory: one walk of a department's tree, which every command reads."""

from pathlib import Path

import pytest
from airnub_core import inventory
from airnub_core.conventions import ConventionError
from airnub_core.inventory import ORPHAN
from airnub_platform.testing import importable_departments, write_department

DEPT = "dept_stock"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("inventory")
    write_department(root, DEPT, {"ingestion": ["feed", "broken"], "processing": ["tidy"]})
    package = root / DEPT
    (package / "ingestion" / "broken" / f"make_broken_flow_{DEPT}.py").rename(
        package / "ingestion" / "broken" / f"notes_{DEPT}.py"
    )
    for task in (package / "ingestion" / "tasks", package / "ingestion" / "feed" / "tasks"):
        task.mkdir(exist_ok=True)
        (task / "__init__.py").touch()
        (task / f"count_task_{DEPT}.py").write_text("")
    variables = package / "configs" / "variables"
    (variables / "ingestion" / "count.yaml").write_text("a: 1\n")
    (variables / "ingestion" / "feed").mkdir()
    (variables / "ingestion" / "feed" / "count.yaml").write_text("a: 1\n")
    (variables / "ingestion" / "feed.prod.yaml").write_text("message: prod\n")
    (variables / "ingestion" / "stray.yaml").write_text("a: 1\n")
    (variables / "analysis.yaml").write_text("a: 1\n")
    with importable_departments(root, {DEPT: "Stock Team"}):
        yield inventory.department(DEPT)


def test_the_tree_holds_every_stage_and_category_in_name_order(tree):
    assert (tree.id, tree.display_name) == (DEPT, "Stock Team")
    assert [s.name for s in tree.stages] == ["ingestion", "processing", "analysis"]
    assert [c.key for c in tree.categories] == [
        "ingestion/broken", "ingestion/feed", "processing/tidy",
    ]  # fmt: skip
    feed = tree.category("ingestion/feed")
    assert feed is not None
    assert feed.module == f"{DEPT}.ingestion.feed.make_feed_flow_{DEPT}"
    assert [t.module for t in feed.tasks] == [f"{DEPT}.ingestion.feed.tasks.count_task_{DEPT}"]
    assert [t.identity.task for t in tree.stage("ingestion").tasks] == ["count"]


def test_a_category_without_one_flow_module_is_listed_and_says_why_when_loaded(tree):
    broken = tree.category("ingestion/broken")
    assert broken is not None and broken.problem is not None
    expected = r"expected one \*_flow_dept_stock\.py module, found 0"
    with pytest.raises(ConventionError, match=expected):
        broken.flow()


def test_flows_are_imported_only_when_asked_for(tree):
    tidy = tree.category("processing/tidy")
    assert tidy is not None
    assert tidy.flow().name == "Make Tidy (Stock Team)"
    assert tree.stage("processing").flow().name == "Processing Flow (Stock Team)"


def test_each_config_file_maps_to_the_node_it_configures(tree):
    base = tree.src / "configs" / "variables"
    owners = {path.relative_to(base).as_posix(): node for path, node in tree.config_files()}
    assert owners["ingestion/feed.yaml"].identity.category == "feed"
    assert owners["ingestion/count.yaml"].identity.task == "count"
    assert owners["ingestion/feed/count.yaml"].module.endswith(f"feed.tasks.count_task_{DEPT}")
    assert owners["ingestion/stray.yaml"] is None
    assert owners["analysis.yaml"] is None  # a stage has no settings of its own
    assert "ingestion/feed.prod.yaml" not in owners  # an overlay merges into its base
    assert "no category or task owns this file" in ORPHAN


def test_the_one_flow_rule_counts_flows_defined_in_the_module(tmp_path: Path):
    import types

    from prefect import flow

    module = types.ModuleType("dept_x.ingestion.a.make_a_flow_dept_x")

    @flow
    def one() -> None: ...

    one.fn.__module__ = module.__name__
    module.one = one  # type: ignore[attr-defined]
    assert inventory.flow_in(module) is one
    module.again = one  # type: ignore[attr-defined]  # one flow under two names: ambiguous
    with pytest.raises(ConventionError, match="expected exactly one flow, found 2"):
        inventory.flow_in(module)


def test_an_unknown_department_is_one_error():
    with pytest.raises(ConventionError, match="unknown department 'dept_nowhere'"):
        inventory.department("dept_nowhere")


def test_a_working_tree_is_read_before_it_is_installed(tmp_path):
    write_department(
        tmp_path / "packages" / "dept_fresh" / "src", "dept_fresh", {"analysis": ["sums"]}
    )
    (tmp_path / "packages" / "dept_fresh" / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "packages" / "dept_nothing").mkdir()  # no pyproject.toml: not a department
    (tmp_path / "packages" / "core").mkdir()
    found = inventory.folders(tmp_path)
    assert found == {"dept_fresh": tmp_path / "packages" / "dept_fresh"}
    tree = inventory.at(found["dept_fresh"] / "src" / "dept_fresh", "dept_fresh")
    assert [c.key for c in tree.categories] == ["analysis/sums"]
