"""``airnub affected``: which departments a git diff affects.

The workspace graph comes from ``uv.lock``, which records each member's path and its
dependencies on other members. A changed file belongs to the member whose folder holds
it; every department that depends on that member, directly or through others, is
affected too, so a change to ``packages/core`` selects every department using core, and a change to
``packages/platform`` every department whose dev group brings it.
Files that shape every environment (``uv.lock``, the root ``pyproject.toml``,
``.python-version``, workflows) select everything, and so do the files that shape every
department's image (the root ``Dockerfile`` and its ignore files): CI builds an image only
for a selected department. Documentation selects nothing.

The change is also sorted into kinds, so CI runs only the checks it needs: ``docs``
(the site build), ``workflows`` (workflow linters), ``containers`` (the compose check),
``python`` (ruff, the lock check) and ``core`` (core, the other non-department members,
the generators, and the files every job depends on).
"""

from __future__ import annotations

import subprocess
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from airnub_core.conventions import DEPARTMENT_PREFIX

GLOBAL_FILES = ("uv.lock", "pyproject.toml", ".python-version")
GLOBAL_FOLDERS = (".github/workflows/",)
# The build of every department's image (``docker build --build-arg DEPARTMENT=...`` at
# the root); BuildKit reads ``<Dockerfile>.dockerignore`` before ``.dockerignore``.
IMAGE_FILES = ("Dockerfile", ".dockerignore", "Dockerfile.dockerignore")
DOC_EXTENSIONS = ("md", "rst")
ZERO_SHA = "0" * 40

KINDS = ("docs", "workflows", "containers", "python", "core")
# Beyond GLOBAL_*: files that change how every check runs, but not what a department is.
CORE_FILES = (*GLOBAL_FILES, ".pre-commit-config.yaml")
CORE_FOLDERS = (*GLOBAL_FOLDERS, ".ci/", "tools/")
DOC_FILES = ("mkdocs.yml",)
DOC_FOLDERS = ("docs/",)
PYTHON_NAMES = ("pyproject.toml", "uv.lock")
PYTHON_SUFFIXES = (".py", ".pyi")


def is_container_file(name: str) -> bool:
    """Dockerfile (and Dockerfile.x / x.Dockerfile / x.Containerfile), compose files,
    .dockerignore."""
    return (
        name == ".dockerignore"
        or name in ("Dockerfile", "Containerfile")
        or name.startswith(("Dockerfile.", "Containerfile."))
        or name.endswith((".Dockerfile", ".Containerfile"))
        or (name.startswith(("docker-compose", "compose")) and name.endswith((".yml", ".yaml")))
    )


def selects_everything(path: str) -> bool:
    """Whether a change to ``path`` changes every department's environment or image."""
    return path in GLOBAL_FILES or path in IMAGE_FILES or path.startswith(GLOBAL_FOLDERS)


def kinds_of(path: str, doc_extensions: tuple[str, ...]) -> set[str]:
    """The kinds of check a change to ``path`` needs (core members are added by the caller)."""
    pure = PurePosixPath(path)
    found: set[str] = set()
    if pure.suffix.lstrip(".") in doc_extensions or path in DOC_FILES:
        found.add("docs")
    if path.startswith(DOC_FOLDERS):
        found.add("docs")
    if path.startswith(".github/"):
        found.add("workflows")
    if is_container_file(pure.name):
        found.add("containers")
    if pure.suffix in PYTHON_SUFFIXES or pure.name in PYTHON_NAMES:
        found.add("python")
    if path in CORE_FILES or path.startswith(CORE_FOLDERS):
        found.add("core")
    return found


@dataclass
class Workspace:
    paths: dict[str, str]  # member distribution name -> its folder, relative to the root
    needs: dict[str, set[str]]  # member -> members it depends on directly

    def dependents(self, changed: set[str]) -> set[str]:
        """``changed`` and every member that depends on one of them, transitively."""
        users: dict[str, set[str]] = {name: set() for name in self.paths}
        for name, deps in self.needs.items():
            for dep in deps:
                users[dep].add(name)
        found, queue = set(changed), deque(changed)
        while queue:
            for user in users.get(queue.popleft(), ()):
                if user not in found:
                    found.add(user)
                    queue.append(user)
        return found

    def owner(self, path: str) -> str | None:
        """The member whose folder holds ``path`` (the longest matching folder)."""
        holding = [
            name
            for name, folder in self.paths.items()
            if folder not in ("", ".") and (path == folder or path.startswith(f"{folder}/"))
        ]
        return max(holding, key=lambda name: len(self.paths[name]), default=None)

    @property
    def departments(self) -> dict[str, str]:
        """Department distribution name -> folder."""
        return {
            name: folder
            for name, folder in self.paths.items()
            if PurePosixPath(folder).name.startswith(DEPARTMENT_PREFIX)
        }


def read_workspace(lock_text: str) -> Workspace:
    lock = tomllib.loads(lock_text)
    paths: dict[str, str] = {}
    for package in lock.get("package", []):
        source = package.get("source", {})
        folder = source.get("editable") or source.get("virtual")
        if folder is not None:
            paths[package["name"]] = folder
    # Dependency groups count: a department is tested and deployed through its dev group
    # (the platform tools), so a platform change re-tests and redeploys every department.
    needs = {
        package["name"]: {
            d["name"]
            for d in [*package.get("dependencies", []),
                      *(d for group in package.get("dev-dependencies", {}).values() for d in group)]
        } & set(paths)
        for package in lock.get("package", [])
        if package["name"] in paths
    }  # fmt: skip
    return Workspace(paths, needs)


@dataclass
class Affected:
    departments: list[str] = field(default_factory=list)  # distribution names
    deleted: list[str] = field(default_factory=list)  # departments gone at head
    # No usable base: ``deleted`` is empty because it is unknown, not because none went.
    deleted_unknown: bool = False
    reason: str = ""
    paths: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, False))

    @property
    def any(self) -> bool:
        return bool(self.departments)

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        """A GitHub Actions matrix: one entry per affected department."""
        return {
            "include": [
                {
                    "department": PurePosixPath(self.paths[name]).name,
                    "package": name,
                    "path": self.paths[name],
                }
                for name in self.departments
            ]
        }


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def _resolves(root: Path, ref: str) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0


def changed_files(root: Path, base: str, head: str) -> list[tuple[str, str]]:
    """(status, path) between the merge base of ``base`` and ``head``, and ``head``."""
    merge_base = _git(root, "merge-base", base, head)
    start = merge_base.stdout.strip() if merge_base.returncode == 0 else base
    done = _git(root, "diff", "--name-status", "--no-renames", start, head)
    if done.returncode != 0:
        raise RuntimeError(f"git diff {start} {head} failed: {done.stderr.strip()}")
    return [tuple(line.split("\t", 1)) for line in done.stdout.splitlines() if line]  # type: ignore[misc]


def affected(
    root: Path,
    base: str | None,
    head: str = "HEAD",
    doc_extensions: tuple[str, ...] = DOC_EXTENSIONS,
) -> Affected:
    """The departments a change from ``base`` to ``head`` affects."""
    head_lock = _git(root, "show", f"{head}:uv.lock")
    if head_lock.returncode != 0:
        raise RuntimeError(f"no uv.lock at {head}: {head_lock.stderr.strip()}")
    workspace = read_workspace(head_lock.stdout)
    everything = sorted(workspace.departments)
    result = Affected(paths=workspace.paths)
    if not base or base == ZERO_SHA or not _resolves(root, base):
        result.departments = everything
        result.kinds = dict.fromkeys(KINDS, True)
        result.reason = f"no usable base ({base or 'none given'}): everything"
        result.deleted_unknown = True
        return result

    base_lock = _git(root, "show", f"{base}:uv.lock")
    old = read_workspace(base_lock.stdout) if base_lock.returncode == 0 else workspace
    result.deleted = sorted(
        folder.rsplit("/", 1)[-1]
        for name, folder in old.departments.items()
        if name not in workspace.paths
    )
    changed: set[str] = set()
    kinds: set[str] = set()
    global_change = ""
    for _status, path in changed_files(root, base, head):
        kinds |= kinds_of(path, doc_extensions)
        if selects_everything(path):
            global_change = global_change or path
            continue
        if PurePosixPath(path).suffix.lstrip(".") in doc_extensions:
            continue
        owner = workspace.owner(path) or old.owner(path)
        if owner is None:
            continue
        # A non-department member (core, a shared library) is tested by the core job.
        if owner not in workspace.departments and owner not in old.departments:
            kinds.add("core")
        if owner in workspace.paths:
            changed.add(owner)
    result.kinds = {kind: kind in kinds for kind in KINDS}
    if global_change:
        result.departments = everything
        result.reason = f"{global_change} changed: everything"
        return result
    hit = workspace.dependents(changed)
    result.departments = sorted(name for name in hit if name in workspace.departments)
    result.reason = f"changed members: {', '.join(sorted(changed)) or 'none'}"
    return result
