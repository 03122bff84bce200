"""A display name round-trips: what check_display_name accepts comes back unchanged from
the installed package's metadata, which is where conventions.departments() reads it.

The path is the department's pyproject.toml (rendered by the real template), its
entry point written to ``entry_points.txt`` by the build backend, and that file read
by ``importlib.metadata``. The property test writes the file the way uv_build does;
one test builds real wheels to show that it does write it that way."""

import subprocess
import tempfile
import tomllib
import zipfile
from importlib.metadata import Distribution
from pathlib import Path

import pytest
from airnub_core import conventions
from airnub_core.conventions import ConventionError, check_display_name
from airnub_platform.scaffolding import render
from airnub_platform.testing import OWNED, clean_env, generate
from hypothesis import example, given
from hypothesis import strategies as st

DEPT = "dept_named"
GROUP = conventions.ENTRY_POINT_GROUP
# What the template needs besides the display name.
OWNERSHIP = {"owners": "@acme/named @bob", "alerts": "#named-alerts"}
# What readers of entry_points.txt, TOML and YAML treat specially, and look-alikes.
SPECIAL = "#;[]=: \t\"'\\{}$%/<>&.,-_aZ0é\u00a0\u2028\u0085\r\n\x7f\ufeff🙂"
names = st.one_of(
    st.text(max_size=70),
    st.text(alphabet=SPECIAL, max_size=12),
    st.builds("".join, st.lists(st.sampled_from(["#", ";", "[", "Team", " ", "x]", "="]))),
)


def rendered_pyproject(display_name: str) -> dict:
    text = render(
        "department/pyproject.toml.j2",
        department=DEPT,
        distribution=conventions.distribution_name(DEPT),
        display_name=display_name,
        **OWNERSHIP,
    )
    return tomllib.loads(text)


def entry_points_txt(entry_points: dict[str, dict[str, str]]) -> str:
    """``entry_points.txt`` as uv_build writes it: per group, in sorted order, a ``[group]``
    line, a ``name = value`` line per entry point in sorted order, then a blank line."""
    text = ""
    for group, entries in sorted(entry_points.items()):
        lines = "".join(f"{name} = {value}\n" for name, value in sorted(entries.items()))
        text += f"[{group}]\n{lines}\n"
    return text


def read_back(entry_points_text: str) -> dict[str, str]:
    """The department entry points ``importlib.metadata`` finds in that file: name -> value."""
    with tempfile.TemporaryDirectory() as folder:
        info = Path(folder) / "dept_named-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dept-named\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(entry_points_text, encoding="utf-8")
        found = Distribution.at(info).entry_points.select(group=GROUP)
        return {entry.name: entry.value for entry in found}


@given(names)
@example("#1 Team")
@example(";x")
@example("[x] Team")
@example("Team = x")
@example("a\u2028b")
@example('Ops "Q" {x} \\ #1 ;[y]: é')
def test_an_accepted_display_name_reads_back_unchanged(name):
    try:
        accepted = check_display_name(name)
    except ConventionError as error:
        assert len(str(error).splitlines()) == 1 and "display name" in str(error)
        return
    project = rendered_pyproject(accepted)["project"]
    assert project["entry-points"][GROUP] == {accepted: DEPT}
    assert project["description"].startswith(f"{accepted}: ")
    assert read_back(entry_points_txt(project["entry-points"])) == {accepted: DEPT}


def test_names_that_would_not_read_back_are_the_ones_refused():
    """Without the rule, a name starting with '#' vanishes and one with '=' is cut."""
    assert read_back(entry_points_txt({GROUP: {"#1 Team": DEPT}})) == {}
    assert read_back(entry_points_txt({GROUP: {"a = b": DEPT}})) == {"a": f"b = {DEPT}"}
    for name in ("#1 Team", "; x", "[x] y", "a = b"):
        with pytest.raises(ConventionError, match="display name"):
            check_display_name(name)


TRICKY = ['Ops "Q" {x} \\ #1 ;[y]: é', "Team \u00e9\u0301 ü 🙂 'x'", "A.B, (C) - $HOME ~"]


def test_uv_build_writes_entry_points_as_the_property_test_does(tmp_path):
    """A real wheel per tricky name, built offline by the pinned build backend from the
    rendered pyproject.toml; its entry_points.txt is the one the property test writes."""
    for index, name in enumerate(TRICKY):
        project = tmp_path / str(index)
        (project / "src" / DEPT).mkdir(parents=True)
        (project / "src" / DEPT / "__init__.py").write_text("")
        text = render("department/pyproject.toml.j2", department=DEPT,
                      distribution="dept-named", display_name=name, **OWNERSHIP)  # fmt: skip
        (project / "pyproject.toml").write_text(text, encoding="utf-8")
        build = ["uv", "build", "--wheel", "--offline", "--quiet", "-o", "dist", "."]
        done = subprocess.run(build, cwd=project, capture_output=True, text=True, timeout=300,
                              env=clean_env(), stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == 0, done.stderr
        (wheel,) = (project / "dist").glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            written = archive.read("dept_named-0.1.0.dist-info/entry_points.txt").decode()
        assert written == entry_points_txt(tomllib.loads(text)["project"]["entry-points"])
        assert read_back(written) == {name: DEPT}


def test_a_department_with_a_tricky_name_is_listed_under_it(scratch_root):
    """End to end in the session's scratch workspace: added by the generator, installed
    by `uv run`, listed by `airnub list` under exactly that name; then removed again."""
    name = TRICKY[0]
    generate(scratch_root, "add_department", "--id", DEPT, "--name", name, *OWNED)
    try:
        listed = subprocess.run(
            ["uv", "run", "--quiet", "airnub", "list", DEPT],
            cwd=scratch_root, capture_output=True, text=True, timeout=600,
            env=clean_env(COLUMNS="200"), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        generate(scratch_root, "remove_department", "--id", DEPT)
    assert listed.returncode == 0, listed.stderr
    assert f"{DEPT} ({name})" in listed.stdout
    assert f"Ingestion Flow ({name})" in listed.stdout
