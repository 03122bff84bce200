"""The inventory against a hostile tree: folders named against the conventions, FIFOs
where modules and config files go, packages that do not import, and many categories."""

import os
import sys
from pathlib import Path

import pytest
from airnub_core import config, inventory
from airnub_core.conventions import ConventionError
from airnub_platform.testing import importable_departments, planted_fifo, write_department

PRODUCER = '\nfrom airnub_core.contracts import produces\n\nOUT = produces(__name__, "{name}")\n'


def _department(root: Path, department: str, categories: dict[str, list[str]]) -> Path:
    write_department(root, department, categories)
    return root / department


@pytest.mark.parametrize(
    ("number", "folder"), list(enumerate(["Feed", "class", "a b", "a-b", "[red]x"]))
)
def test_a_folder_named_against_the_conventions_is_listed_with_why_and_never_imported(
    tmp_path, number, folder
):
    department = f"dept_inv_names_{number}"  # each its own: sys.modules keeps packages
    package = _department(tmp_path, department, {"ingestion": ["feed"]})
    hostile = package / "ingestion" / folder
    hostile.mkdir()
    (hostile / "__init__.py").touch()
    flow = package / "ingestion" / "feed" / f"make_feed_flow_{department}.py"
    (hostile / flow.name).write_text(flow.read_text())
    with importable_departments(tmp_path, {department: "Names Team"}):
        tree = inventory.department(department)
        category = tree.category(f"ingestion/{folder}")
        assert category is not None and category.problem is not None
        assert category.problem.startswith(f"{department}/ingestion: category {folder!r}")
        with pytest.raises(ConventionError, match=r"lowercase snake_case|Python keyword"):
            category.flow()
        assert not any(name.startswith(f"{department}.ingestion.{folder}") for name in sys.modules)


def test_a_fifo_is_no_module_and_a_fifo_config_is_refused_not_waited_on(tmp_path):
    department = "dept_inv_fifo"
    package = _department(tmp_path, department, {"ingestion": ["feed", "piped"]})
    flow = package / "ingestion" / "piped" / f"make_piped_flow_{department}.py"
    flow.unlink()
    os.mkfifo(flow)
    os.mkfifo(package / "ingestion" / "tasks" / f"piped_task_{department}.py")
    config_file = package / "configs" / "variables" / "ingestion" / "feed.yaml"
    config_file.unlink()
    with importable_departments(tmp_path, {department: "Fifo Team"}):
        tree = inventory.department(department)
        piped = tree.category("ingestion/piped")
        assert piped is not None and piped.problem is not None
        assert piped.problem.endswith(f"expected one *_flow_{department}.py module, found 0")
        assert tree.stage("ingestion").tasks == ()
        refused = pytest.raises(config.ConfigError, match=r"feed\.yaml: not a regular file")
        with planted_fifo(config_file), refused:
            config.read_yaml(config_file)


def test_a_department_whose_package_does_not_import_is_one_line_and_hides_no_other(tmp_path):
    good, bad, hollow = "dept_inv_good", "dept_inv_bad", "dept_inv_hollow"
    _department(tmp_path, good, {"ingestion": ["feed"]})
    (_department(tmp_path, bad, {}) / "__init__.py").write_text("raise RuntimeError('no\\nway')")
    (_department(tmp_path, hollow, {}) / "__init__.py").unlink()  # a namespace package
    quits = _department(tmp_path, "dept_inv_quits", {"ingestion": ["feed"]})
    (quits / "__init__.py").write_text("import sys\nsys.exit(0)\n")  # would end the command
    names = {good: "Good Team", bad: "Bad Team", hollow: "Hollow Team", "dept_inv_gone": "Gone",
             "dept_inv_quits": "Quits Team"}  # fmt: skip
    with importable_departments(tmp_path, names):
        with pytest.raises(ConventionError) as raised:
            inventory.department(bad)
        assert str(raised.value) == f"{bad}: its package does not import (RuntimeError: no)"
        with pytest.raises(ConventionError, match="not a regular package"):
            inventory.department(hollow)
        trees, unreadable = inventory.readable(
            [good, bad, hollow, "dept_inv_gone", "dept_inv_quits", good]
        )
        assert [tree.id for tree in trees] == [good]
        assert list(unreadable) == [bad, hollow, "dept_inv_gone", "dept_inv_quits"]
        assert unreadable["dept_inv_quits"].endswith("does not import (SystemExit: 0)")
        assert "ModuleNotFoundError: No module named 'dept_inv_gone'" in unreadable["dept_inv_gone"]


def test_two_hundred_categories_are_listed_without_importing_one(tmp_path):
    department = "dept_inv_many"
    names = [f"c{i:03d}" for i in range(200)]
    package = _department(tmp_path, department, {"ingestion": names})
    for name in names:  # a module that ran would fail, loudly
        (package / "ingestion" / name / f"make_{name}_flow_{department}.py").write_text(
            "raise SystemExit('imported')\n"
        )
    with importable_departments(tmp_path, {department: "Many Team"}):
        tree = inventory.department(department)
        assert [c.name for c in tree.categories] == names
        assert all(c.problem is None for c in tree.categories)
        assert [m for m in sys.modules if m.startswith(f"{department}.")] == []


def test_a_symlinked_category_folder_is_a_category_of_the_tree(tmp_path):
    """The inventory follows the link (Python imports through it); `airnub check` flags
    it, as its rules cannot read what is behind it (test_check_hostile)."""
    department = "dept_inv_linked"
    package = _department(tmp_path / "inside", department, {"ingestion": ["feed"]})
    outside = tmp_path / "outside"
    outside.mkdir()
    (package / "ingestion" / "feed").rename(outside / "linked")
    flow = outside / "linked" / f"make_feed_flow_{department}.py"
    flow.rename(outside / "linked" / f"make_linked_flow_{department}.py")
    (package / "ingestion" / "linked").symlink_to(outside / "linked")
    with importable_departments(tmp_path / "inside", {department: "Linked Team"}):
        linked = inventory.department(department).category("ingestion/linked")
        assert linked is not None and linked.problem is None
        assert linked.flow().name == "Make Linked (Linked Team)"


def test_contracts_declared_in_task_and_subflow_modules_are_the_categorys(tmp_path):
    department = "dept_inv_spread"
    package = _department(tmp_path, department, {"ingestion": ["feed"]})
    folder = package / "ingestion" / "feed"
    for kind, suffix in (("tasks", "task"), ("subflows", "subflow")):
        (folder / kind).mkdir()
        (folder / kind / "__init__.py").touch()
        module = folder / kind / f"fetch_{suffix}_{department}.py"
        module.write_text(PRODUCER.format(name=f"from_{kind}.json"))
    flow = folder / f"make_feed_flow_{department}.py"
    flow.write_text(flow.read_text() + PRODUCER.format(name="from_flow.json"))
    with importable_departments(tmp_path, {department: "Spread Team"}):
        feed = inventory.department(department).category("ingestion/feed")
        assert feed is not None
        assert [node.identity.action for node in feed.subflows] == ["fetch"]
        _, outputs = feed.contracts
        assert [o.name for o in outputs] == ["from_flow.json", "from_tasks.json",
                                             "from_subflows.json"]  # fmt: skip


def test_a_module_that_exits_as_it_is_imported_is_an_import_error_not_an_exit(tmp_path):
    department = "dept_inv_exits"
    package = _department(tmp_path, department, {"ingestion": ["feed"]})
    flow = package / "ingestion" / "feed" / f"make_feed_flow_{department}.py"
    flow.write_text("import sys\nsys.exit(0)\n")
    with importable_departments(tmp_path, {department: "Exits Team"}):
        feed = inventory.department(department).category("ingestion/feed")
        assert feed is not None
        with pytest.raises(ImportError, match=r"make_feed_flow_dept_inv_exits exits on import"):
            feed.flow()
