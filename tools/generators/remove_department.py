"""Remove a department: the reverse of ``add_department.py``.

It removes the workspace member ``packages/dept_<id>`` (the whole folder), its
entries in the root ``pyproject.toml``, its line in ``.github/CODEOWNERS`` (regenerated
without it) and its worker service in ``docker-compose.yml``, then runs ``uv lock``.
All or nothing: the folder is moved aside first and deleted only when everything else
succeeded; any failure or signal puts everything back. Its deployments on a Prefect
server are left to
``airnub retire`` (CI runs it when a push removes a department).

    uv run python tools/generators/remove_department.py --id project_gamma
"""

import tomllib
from pathlib import Path

import scaffold
from airnub_core import conventions
from airnub_core.inventory import folders as inventory_folders
from airnub_platform import codeowners
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

app = scaffold.app(__doc__)


@app.command()
def main(
    department_id: scaffold.DepartmentIdOption = None,
    dry_run: scaffold.DryRun = False,
    lock: scaffold.Lock = True,
) -> None:
    """Remove packages/dept_<id> and its place in the workspace."""
    raw = scaffold.required(department_id, "--id", "Department id to remove")
    department = scaffold.check("--id", conventions.department_id, raw)
    root = scaffold.REPO_ROOT
    known = scaffold.repo_departments(root)
    if department not in known:
        message = conventions.unknown("department", department, known)
        raise scaffold.ScaffoldError(f"--id: {message}")
    refuse_dependents(root, department)
    plan = make_plan(root, department)
    plan.locks = lock
    plan.uninstall = [conventions.distribution_name(department)]
    if dry_run:
        plan.show()
        return
    plan.apply(then=(lambda: scaffold.uv_lock(root)) if lock else None)
    print(f"next: `uv run airnub retire {department}` removes its deployments from a server")


def refuse_dependents(root: Path, department: str) -> None:
    """Another member that depends on this one would break: name it instead."""
    distribution = conventions.distribution_name(department)
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        if pyproject.parent.name == department:
            continue
        where = pyproject.relative_to(root)
        try:
            names = requirement_names(tomllib.loads(pyproject.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, InvalidRequirement) as error:
            raise scaffold.ScaffoldError(f"{where}: cannot be read: {error}") from None
        if distribution in {canonicalize_name(name) for name in names}:
            raise scaffold.ScaffoldError(
                f"--id: {where} depends on {distribution}; remove that dependency first"
            )


def requirement_names(data: dict) -> list[str]:
    """Every distribution a member's pyproject.toml asks for: dependencies, extras,
    dependency groups and uv sources."""
    project = data.get("project", {})
    wanted = [*project.get("dependencies", [])]
    wanted += [d for extra in project.get("optional-dependencies", {}).values() for d in extra]
    groups = data.get("dependency-groups", {}).values()
    wanted += [d for group in groups for d in group if isinstance(d, str)]
    names = [Requirement(requirement).name for requirement in wanted]
    return names + list(data.get("tool", {}).get("uv", {}).get("sources", {}))


def make_plan(root: Path, department: str) -> scaffold.Plan:
    plan = scaffold.Plan(root)
    plan.remove.append(Path("packages") / department)
    distribution = conventions.distribution_name(department)
    plan.edit[Path("pyproject.toml")] = scaffold.remove_workspace_member(root, distribution)
    compose = scaffold.remove_compose_worker(root, department)
    if compose is not None:
        plan.edit[Path("docker-compose.yml")] = compose
    plan.edit[codeowners.FILE] = owners_file(root, department)
    return plan


def owners_file(root: Path, department: str) -> str:
    """CODEOWNERS without the department's line. Its own pyproject.toml is not read, so
    a department whose owners are broken can still be removed."""
    try:
        remaining = {
            other: codeowners.tree_ownership(root, other, folder)
            for other, folder in inventory_folders(root).items()
            if other != department
        }
        return codeowners.render(codeowners.platform_owners(root), remaining)
    except codeowners.CodeownersError as error:
        raise scaffold.ScaffoldError(str(error)) from None


if __name__ == "__main__":
    scaffold.run(app)
