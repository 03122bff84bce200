"""``airnub check`` counts a category as tested only if a test module imports its flow."""

import ast
import itertools
import keyword
from collections.abc import Mapping
from pathlib import Path

import pytest
from airnub_platform.check import check_repository, imported_modules
from airnub_platform.testing import department_pyproject
from hypothesis import given
from hypothesis import strategies as st

CATEGORIES = {"ingestion": ["feed"], "processing": ["tidy"], "analysis": ["sums"]}
_ids = itertools.count()


def new_department(make_department) -> Path:
    """A fresh department with one category per stage and no tests yet."""
    dept = f"dept_tested_{next(_ids)}"  # its own id: Python caches modules by name
    folder = make_department(dept, CATEGORIES)
    (folder / "pyproject.toml").write_text(department_pyproject(dept, "Tested Team"))
    # the other two categories are imported plainly, so only ingestion/feed is in question
    (folder / "tests").mkdir()
    (folder / "tests" / "test_others.py").write_text(
        f"import {dept}.processing.tidy.make_tidy_flow_{dept}\n"
        f"from {dept}.analysis.sums.make_sums_flow_{dept} import make_sums\n"
    )
    return folder


def check_with_tests(folder: Path, tests: Mapping[str, str | bytes]) -> list[str]:
    """What ``airnub check`` reports (``path: message``) once the department's ``tests/``
    also holds ``tests`` (path -> text or raw bytes). In text, ``{module}`` is the
    ingestion/feed flow module, ``{package}`` its category package, ``{flow}`` the flow and
    ``{dept}`` the department."""
    dept = folder.name
    names = {
        "dept": dept,
        "package": f"{dept}.ingestion.feed",
        "module": f"{dept}.ingestion.feed.make_feed_flow_{dept}",
        "flow": "make_feed",
    }
    for name, content in tests.items():
        path = folder / "tests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.format(**names))
    root = folder.parent.parent
    report = check_repository(root, [dept])
    assert report.categories == 3
    return [v.show(root) for v in report.violations]


def department_with_tests(
    make_department, tests: Mapping[str, str | bytes]
) -> tuple[str, list[str]]:
    folder = new_department(make_department)
    return folder.name, check_with_tests(folder, tests)


def untested(dept: str) -> str:
    return (
        f"packages/{dept}/src/{dept}/ingestion/feed: no test module imports"
        f" {dept}.ingestion.feed.make_feed_flow_{dept}"
    )


IMPORTS = {
    "import": "import {module}\n",
    "import as": "import {module} as flow_module\n",
    "from module import flow": "from {module} import {flow}\n",
    "from module import *": "from {module} import *\n",
    "from package import module": "from {package} import make_feed_flow_{dept}\n",
    "from package import (module as alias)": (
        "from {package} import (\n    make_feed_flow_{dept} as flow_module,\n)\n"
    ),
    "importlib.import_module": 'import importlib\nMODULE = importlib.import_module("{module}")\n',
    "import_module": 'from importlib import import_module\nMODULE = import_module("{module}")\n',
    "inside a test function": "def test_it():\n    from {module} import {flow}\n",
}


@pytest.mark.parametrize("text", IMPORTS.values(), ids=IMPORTS.keys())
def test_each_import_form_counts(make_department, text):
    _, violations = department_with_tests(make_department, {"test_feed.py": text})
    assert violations == []


MENTIONS = {
    "a comment": "# import {module}\n# tests feed, make_feed and {module}\n",
    "a docstring": '"""Tests {module}: import {module}"""\n',
    "a string": 'WHAT = "from {module} import {flow}"\n',
    "a computed import_module": (
        'import importlib\nNAME = "{module}"\nMODULE = importlib.import_module(NAME)\n'
    ),
    "an f-string import_module": (
        'import importlib\nMODULE = importlib.import_module(f"{module}")\n'
    ),
    "another object's import_module": 'import loader\nMODULE = loader.import_module("{module}")\n',
    "only the category package": "import {package}\nfrom {package} import tasks\n",
    "a relative import": "from .{module} import {flow}\n",
    "a module of the same name elsewhere": "from elsewhere import {flow}\nimport feed\n",
    "a longer name it begins": "import {module}_v2\nfrom {package} import make_feed_flow\n",
}


@pytest.mark.parametrize("text", MENTIONS.values(), ids=MENTIONS.keys())
def test_a_mention_that_is_not_an_import_does_not_count(make_department, text):
    dept, violations = department_with_tests(make_department, {"test_feed.py": text})
    assert violations == [untested(dept)]


def test_a_test_module_at_any_depth_counts(make_department):
    tests = {"unit/feeds/deep/test_feed.py": "from {module} import {flow}\n"}
    _, violations = department_with_tests(make_department, tests)
    assert violations == []


def test_a_file_that_does_not_parse_is_one_violation_naming_it(make_department):
    # parsed once per department: three categories, still one violation for the file
    tests = {"test_broken.py": "from {module} import (\n", "test_feed.py": "import {module}\n"}
    dept, violations = department_with_tests(make_department, tests)
    assert violations == [
        f"packages/{dept}/tests/test_broken.py: does not parse, so it tests nothing:"
        " SyntaxError: '(' was never closed (test_broken.py, line 1)"
    ]


def test_a_category_imported_only_by_a_file_that_does_not_parse_is_untested(make_department):
    tests = {"test_feed.py": "import {module}\ndef broken(:\n"}
    dept, violations = department_with_tests(make_department, tests)
    assert len(violations) == 2
    assert violations[1] == untested(dept)
    assert violations[0].startswith(f"packages/{dept}/tests/test_feed.py: does not parse")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"import os\x00\n", "source code string cannot contain null bytes"),
        (b"name = '\xff\xfe'\n", "SyntaxError: (unicode error)"),
        (b"# -*- coding: no-such-codec -*-\n", "SyntaxError: unknown encoding: no-such-codec"),
        (b"x = " + b"(" * 300 + b")" * 300 + b"\n", "SyntaxError: too many nested parentheses"),
        (b"x = " + b"-" * 200_000 + b"1\n", "nested too deeply"),
        (b"x = 1" + b" + 1" * 300_000 + b"\n", "nested too deeply"),
    ],
    ids=["null byte", "not UTF-8", "unknown coding", "parentheses", "operators", "operands"],
)
def test_hostile_bytes_are_one_line_naming_the_file(make_department, content, why):
    tests = {"test_hostile.py": content, "test_feed.py": "import {module}\n"}
    dept, violations = department_with_tests(make_department, tests)
    assert len(violations) == 1, violations
    line = violations[0]
    assert line.startswith(f"packages/{dept}/tests/test_hostile.py: does not parse")
    assert why in line and "\n" not in line


def test_what_is_not_a_file_is_skipped_and_a_link_is_read(make_department, tmp_path):
    """A folder or a dangling link named like a test module holds no imports and is no
    crash; a link to a real file is read as that file."""
    folder = new_department(make_department)
    dept = folder.name
    (folder / "tests" / "test_gone.py").symlink_to(tmp_path / "gone.py")
    tests = {"test_folder.py/notes.txt": "import {module}\n"}
    assert check_with_tests(folder, tests) == [untested(dept)]
    shared = tmp_path / "shared.py"
    shared.write_text(f"from {dept}.ingestion.feed.make_feed_flow_{dept} import make_feed\n")
    (folder / "tests" / "test_linked.py").symlink_to(shared)
    assert check_with_tests(folder, {}) == []


# --- the reader of imports alone, on any names --------------------------------------

identifier = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,3}){0,2}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
)
dotted = st.lists(identifier, min_size=1, max_size=5).map(".".join)


@given(dotted, identifier)
def test_every_import_form_of_any_module_is_read(module, alias):
    package, _, leaf = module.rpartition(".")
    forms = [
        f"import {module}",
        f"import {module} as {alias}",
        f"from {module} import {alias}",
        f"import importlib\nimportlib.import_module({module!r})",
    ]
    if package:
        forms.append(f"from {package} import {leaf} as {alias}")
    for source in forms:
        assert module in imported_modules(ast.parse(source)), source


@given(dotted)
def test_no_comment_or_string_is_read_as_an_import(module):
    source = f"# import {module}\nx = 'import {module}'\ny = f'from {module} import z'\n"
    assert imported_modules(ast.parse(source)) == set()
