"""`airnub affected` on a temporary git repository, side by side with difftrace."""

import json
import shutil
import subprocess

import pytest
from airnub_platform.affected import IMAGE_FILES, KINDS, ZERO_SHA, affected, selects_everything
from hypothesis import given
from hypothesis import strategies as st

# member -> (folder, workspace members it depends on)
MEMBERS = {
    "airnub-core": ("packages/core", []),
    "airnub-tools": ("packages/tools", ["airnub-core"]),  # "dev:" marks a dev-group edge
    "airnub-shared": ("packages/shared", ["airnub-core"]),
    "dept-a": ("packages/dept_a", ["airnub-core", "dev:airnub-tools"]),
    "dept-b": ("packages/dept_b", ["airnub-core", "dev:airnub-tools"]),
    "dept-c": ("packages/dept_c", ["airnub-shared"]),
}
ALL = ["dept-a", "dept-b", "dept-c"]


def lock(members):
    names = ", ".join(f'"{name}"' for name in ["root", *members])
    parts = [f'version = 1\nrequires-python = ">=3.11"\n\n[manifest]\nmembers = [{names}]\n']
    parts.append('[[package]]\nname = "root"\nversion = "0"\nsource = { virtual = "." }\n')
    for name, (folder, deps) in members.items():
        listed = ", ".join(
            f'{{ name = "{d}" }}' for d in [*deps, "httpx"] if not d.startswith("dev:")
        )
        dev = ", ".join(f'{{ name = "{d[4:]}" }}' for d in deps if d.startswith("dev:"))
        parts.append(
            f'[[package]]\nname = "{name}"\nversion = "0.1.0"\n'
            f'source = {{ editable = "{folder}" }}\ndependencies = [{listed}]\n'
            + (f"\n[package.dev-dependencies]\ndev = [{dev}]\n" if dev else "")
        )
    parts.append('[[package]]\nname = "httpx"\nversion = "0.28.1"\n')
    return "\n".join(parts)


class Repo:
    def __init__(self, root):
        self.root = root
        self.git("init", "-q", "-b", "main")
        files = {"uv.lock": lock(MEMBERS), "pyproject.toml": "[project]\n", "README.md": "hi\n",
                 ".python-version": "3.11\n", "tools/gen.py": "x = 1\n",
                 ".github/workflows/ci.yml": "on: push\n", "Dockerfile": "FROM base\n",
                 ".dockerignore": ".venv\n", "docker-compose.yml": "services: {}\n"}  # fmt: skip
        for name, (folder, _) in MEMBERS.items():
            files[f"{folder}/pyproject.toml"] = f'[project]\nname = "{name}"\n'
            files[f"{folder}/src/mod.py"] = "VALUE = 1\n"
            files[f"{folder}/README.md"] = "docs\n"
            files[f"{folder}/notes.txt"] = "notes\n"
        self.base = self.commit(files)

    def git(self, *args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=self.root, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    def commit(self, files):
        for path, text in files.items():
            target = self.root / path
            if text is None:
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", "change", "--allow-empty")
        return self.git("rev-parse", "HEAD")

    def scenario(self, files):
        self.git("checkout", "-q", "--detach", self.base)
        return self.commit(files)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return Repo(tmp_path_factory.mktemp("affected"))


without_c = {k: v for k, v in MEMBERS.items() if k != "dept-c"}
with_d = {**MEMBERS, "dept-d": ("packages/dept_d", ["airnub-core"])}
# name -> (files changed, expected departments, expected deleted, base override)
SCENARIOS = {
    "one department's code": ({"packages/dept_a/src/mod.py": "VALUE = 2\n"}, ["dept-a"]),
    "core, used by all": ({"packages/core/src/mod.py": "VALUE = 2\n"}, ALL),
    "a shared library, through it": ({"packages/shared/src/mod.py": "V = 3\n"}, ["dept-c"]),
    "a dev-group member, through it": (
        {"packages/tools/src/mod.py": "V = 4\n"},
        ["dept-a", "dept-b"],
    ),
    "uv.lock": ({"uv.lock": lock(MEMBERS) + "\n# touched\n"}, ALL),
    "the root pyproject.toml": ({"pyproject.toml": "[project]\nname = 'r'\n"}, ALL),
    ".python-version": ({".python-version": "3.12\n"}, ALL),
    "a workflow": ({".github/workflows/ci.yml": "on: [push]\n"}, ALL),
    "the root README only": ({"README.md": "more\n"}, []),
    "a department's README only": ({"packages/dept_b/README.md": "more\n"}, []),
    "a department's data file": ({"packages/dept_b/notes.txt": "more\n"}, ["dept-b"]),
    "tools only": ({"tools/gen.py": "x = 2\n"}, []),
    "two departments": (
        {"packages/dept_a/src/mod.py": "V = 9\n", "packages/dept_b/src/new.py": "W = 1\n"},
        ["dept-a", "dept-b"],
    ),
    "a new department": (
        {"uv.lock": lock(with_d), "packages/dept_d/src/mod.py": "V = 1\n"},
        [*ALL, "dept-d"],
    ),
    # Every department's image is built from the root Dockerfile: CI builds only selected ones.
    "the Dockerfile": ({"Dockerfile": "FROM other\n"}, ALL),
    "the Dockerfile, deleted": ({"Dockerfile": None}, ALL),
    ".dockerignore": ({".dockerignore": ".git\n"}, ALL),
    "the Dockerfile's own ignore file": ({"Dockerfile.dockerignore": ".git\n"}, ALL),
    "the compose file only": ({"docker-compose.yml": "services: {x: {}}\n"}, []),
    "a Dockerfile in a department": ({"packages/dept_b/Dockerfile": "FROM x\n"}, ["dept-b"]),
    "a Dockerfile outside the root": ({"docs/Dockerfile": "FROM x\n"}, []),
    "nothing": ({}, []),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios(repo, name):
    files, expected = SCENARIOS[name]
    head = repo.scenario(files)
    result = affected(repo.root, repo.base, head)
    assert result.departments == expected, result.reason
    assert result.any == bool(expected)
    assert result.matrix()["include"] == [
        {"department": repo_path.rsplit("/", 1)[-1], "package": d, "path": repo_path}
        for d in expected
        for repo_path in [with_d[d][0]]
    ]


# files changed -> the kinds of check the change needs
KIND_SCENARIOS = {
    "one department's code": ({"packages/dept_a/src/mod.py": "V = 2\n"}, {"python"}),
    "a department's pyproject": ({"packages/dept_a/pyproject.toml": "[project]\n"}, {"python"}),
    "a department's data file": ({"packages/dept_b/notes.txt": "more\n"}, set()),
    "core": ({"packages/core/src/mod.py": "V = 2\n"}, {"python", "core"}),
    "a shared library": ({"packages/shared/notes.txt": "x\n"}, {"core"}),
    "tools": ({"tools/gen.py": "x = 2\n"}, {"python", "core"}),
    "uv.lock": ({"uv.lock": lock(MEMBERS) + "\n# touched\n"}, {"python", "core"}),
    ".python-version": ({".python-version": "3.12\n"}, {"core"}),
    ".pre-commit-config.yaml": ({".pre-commit-config.yaml": "repos: []\n"}, {"core"}),
    ".ci/": ({".ci/run": "#!/bin/sh\n"}, {"core"}),
    "a workflow": ({".github/workflows/ci.yml": "on: [push]\n"}, {"workflows", "core"}),
    "the README": ({"README.md": "more\n"}, {"docs"}),
    "a department's README": ({"packages/dept_b/README.md": "more\n"}, {"docs"}),
    "the docs folder": ({"docs/img.svg": "<svg/>\n"}, {"docs"}),
    "mkdocs.yml": ({"mkdocs.yml": "site_name: x\n"}, {"docs"}),
    "the Dockerfile": ({"Dockerfile": "FROM x\n"}, {"containers"}),
    "the compose file": ({"docker-compose.yml": "services: {y: {}}\n"}, {"containers"}),
    ".dockerignore": ({".dockerignore": ".git\n"}, {"containers"}),
    "nothing": ({}, set()),
}


@pytest.mark.parametrize("name", KIND_SCENARIOS)
def test_the_change_is_sorted_into_kinds_of_check(repo, name):
    files, expected = KIND_SCENARIOS[name]
    head = repo.scenario(files)
    assert affected(repo.root, repo.base, head).kinds == {k: k in expected for k in KINDS}


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_an_image_file_selects_every_department_and_says_why(repo, name):
    head = repo.scenario({name: "# changed\n"})
    result = affected(repo.root, repo.base, head)
    assert result.departments == ALL
    assert result.reason == f"{name} changed: everything"
    assert result.kinds["containers"] and not result.kinds["python"]


@given(
    folder=st.sampled_from(["docs", "packages/dept_a", "tools", ".github", "a/b"]),
    name=st.sampled_from([*IMAGE_FILES, "Containerfile", "dockerfile", "Dockerfile.dev"]),
)
def test_only_the_root_image_files_select_everything(folder, name):
    """A Dockerfile in a sub-folder builds no department's image from the root."""
    assert not selects_everything(f"{folder}/{name}")
    assert selects_everything(name) is (name in IMAGE_FILES)


def test_docs_only_selects_no_department_and_not_core(repo):
    head = repo.scenario({"README.md": "x\n", "docs/index.md": "y\n", "mkdocs.yml": "a: 1\n"})
    result = affected(repo.root, repo.base, head)
    assert (result.departments, result.kinds["core"], result.kinds["docs"]) == ([], False, True)


def test_no_usable_base_needs_every_kind(repo):
    head = repo.scenario({"README.md": "x\n"})
    assert all(affected(repo.root, ZERO_SHA, head).kinds.values())


def test_a_deleted_department_is_reported_for_clean_up(repo):
    head = repo.scenario({"uv.lock": lock(without_c), "packages/dept_c": None})
    result = affected(repo.root, repo.base, head)
    assert result.deleted == ["dept_c"]
    assert result.departments == ["dept-c"] or result.departments == ALL[:2]  # lock changed


@pytest.mark.parametrize("base", [None, "", ZERO_SHA, "1234567deadbeef", "no-such-branch"])
def test_a_missing_or_unknown_base_means_everything(repo, base):
    head = repo.scenario({"README.md": "x\n"})
    result = affected(repo.root, base, head)
    assert result.departments == ALL
    assert "no usable base" in result.reason


def test_documentation_extensions_are_configurable(repo):
    head = repo.scenario({"packages/dept_b/notes.txt": "changed\n"})
    assert affected(repo.root, repo.base, head, ("md", "txt")).departments == []


def test_a_force_push_diffs_from_the_common_ancestor(repo):
    head = repo.scenario({"packages/dept_a/src/mod.py": "V = 5\n"})
    rewritten = repo.scenario({"packages/dept_b/src/mod.py": "V = 6\n"})
    # before the force-push the branch was at `head`; now it is at `rewritten`
    assert affected(repo.root, head, rewritten).departments == ["dept-b"]


# Where difftrace (a general tool) and airnub affected disagree, and why.
DIFFERENCES = {
    # difftrace treats all of .github/ as a root trigger; we count workflows only, and
    # .python-version too, which difftrace does not know selects every environment.
    ".python-version": "difftrace does not treat .python-version as global",
    # A change that adds a department and touches uv.lock: difftrace's test-all lists the
    # members it knew before the change, so the new department would not be tested.
    "a new department": "difftrace leaves out a department added by the same change",
    # difftrace knows nothing of images: the root Dockerfile belongs to no member for it.
    **{
        name: "difftrace does not know the root Dockerfile builds every department's image"
        for name in SCENARIOS
        if name.startswith(("the Dockerfile", ".dockerignore"))
    },
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_difftrace_agrees_except_where_explained(repo, name):
    difftrace = shutil.which("difftrace")
    if difftrace is None:
        pytest.skip("difftrace is not installed")
    files, expected = SCENARIOS[name]
    repo.scenario(files)
    done = subprocess.run(
        [difftrace, "--base", repo.base, "--json", "--exclude-ext", "md", "--exclude-ext", "rst"],
        cwd=repo.root, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    departments = (
        ALL
        if theirs["test_all"]
        else sorted(n for n in theirs["affected"] if n.startswith("dept-"))
    )
    if name in DIFFERENCES:
        assert departments != expected, f"no longer differs: {DIFFERENCES[name]}"
    else:
        assert departments == expected


def test_the_github_format_gives_one_output_per_kind(repo):
    head = repo.scenario({"docs/index.md": "x\n"})
    repo.git("checkout", "-q", head)
    done = subprocess.run(
        [shutil.which("airnub") or "airnub", "affected", "--base", repo.base, "--format", "github"],
        cwd=repo.root, capture_output=True, text=True, check=True,
    )  # fmt: skip
    outputs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert outputs["any"] == "false" and outputs["deleted"] == "[]"
    assert {kind: outputs[kind] for kind in KINDS} == {
        kind: "true" if kind == "docs" else "false" for kind in KINDS
    }
