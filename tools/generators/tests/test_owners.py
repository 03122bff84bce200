"""add_department requires owners and an alert channel, writes them and CODEOWNERS in one
transaction; remove_department drops them; hostile owners are refused, nothing written."""

import subprocess
import tomllib

import pytest
from airnub_platform import codeowners
from airnub_platform.testing import OWNED

CODEOWNERS = codeowners.FILE


def status(root) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


@pytest.fixture(scope="module")
def copy(new_copy):
    return new_copy("owners")


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--alerts", "#x"], "--owner is required: a GitHub user @name or team @org/team"),
        (["--owner", "@a b", "--alerts", "#x"], "--owner: '@a b' is not a GitHub user"),
        (["--owner", "@a\n@b", "--alerts", "#x"], "--owner: '@a\\n@b' is not a GitHub user"),
        (["--owner", "$(id)", "--alerts", "#x"], "--owner: '$(id)' is not a GitHub user"),
        (["--owner", "acme", "--alerts", "#x"], "--owner: 'acme' is not a GitHub user"),
        (["--owner", "@a", "--owner", "@A", "--alerts", "#x"], "--owner: '@A' is named twice"),
        (["--owner", "@a"], "--alerts is required (stdin is not a terminal, so no prompt)"),
        (["--owner", "@a", "--alerts", "slack"], "--alerts: not a #channel or an http(s) URL"),
        (["--owner", "@a", "--alerts", "https://u:hunter2@h/x"], "--alerts: the URL must not"),
    ],
)
def test_hostile_owners_are_refused_in_one_line_and_nothing_is_written(
    copy, run_generator, args, why
):
    done = run_generator(copy, "add_department", "--id", "hostile", *args)
    assert done.returncode != 0
    assert done.stderr.startswith(f"error: {why}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "hunter2" not in done.stderr
    assert status(copy) == ""


def test_added_with_its_owners_and_removed_without_them(copy, run_generator):
    args = ["--owner", "@acme/gamma", "--owner", "@erin", "--alerts", "#gamma-alerts"]
    done = run_generator(copy, "add_department", "--id", "gamma_owned", "--no-lock", *args)
    assert done.returncode == 0, done.stderr
    assert f"edited  {CODEOWNERS}" in done.stdout
    project = tomllib.loads((copy / "packages/dept_gamma_owned/pyproject.toml").read_text())
    points = project["project"]["entry-points"]
    assert points["airnub.owners"] == {"dept_gamma_owned": "@acme/gamma @erin"}
    assert points["airnub.alerts"] == {"dept_gamma_owned": "#gamma-alerts"}
    lines = (copy / CODEOWNERS).read_text().splitlines()
    assert "/packages/dept_gamma_owned/ @acme/gamma @erin" in lines
    assert codeowners.difference(copy) is None  # what `airnub check` asks for
    # its prefect.yaml carries the owner tags the installed metadata will give
    deployments = (copy / "packages/dept_gamma_owned/prefect.yaml").read_text()
    assert "owner:@acme/gamma" in deployments and "owner:@erin" in deployments

    done = run_generator(copy, "remove_department", "--id", "gamma_owned", "--no-lock")
    assert done.returncode == 0, done.stderr
    assert not any("gamma_owned" in line for line in (copy / CODEOWNERS).read_text().splitlines())
    assert codeowners.difference(copy) is None
    assert status(copy) == ""  # back to the copy as it was


def test_a_department_with_broken_owners_can_still_be_removed(copy, run_generator):
    done = run_generator(copy, "add_department", "--id", "shaky", "--no-lock", *OWNED)
    assert done.returncode == 0, done.stderr
    pyproject = copy / "packages/dept_shaky/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"@airnub-tests/owners"', '"$(id)"'))
    done = run_generator(copy, "remove_department", "--id", "shaky", "--no-lock")
    assert done.returncode == 0, done.stderr
    assert status(copy) == ""
