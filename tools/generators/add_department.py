"""Create a department: a new uv workspace member ``packages/dept_<id>``.

It gets the three stage orchestrators, the stage folders with ``tasks/``, the
``configs/variables/`` tree, tests, a README and a ``prefect.yaml`` whose
deployments are the stage orchestrators. The root ``pyproject.toml`` gains the
member, docker-compose.yml a worker for it, and ``uv lock`` runs; if anything fails,
nothing is left behind (if it is killed, the next generator run undoes it).

    uv run python tools/generators/add_department.py --id project_gamma --name "Project Gamma"
"""

from pathlib import Path
from typing import Annotated

import scaffold
import typer
from airnub_core import conventions
from airnub_core.conventions import STAGES, Identity

app = scaffold.app(__doc__)


@app.command()
def main(
    department_id: scaffold.DepartmentIdOption = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Display name shown in the Prefect UI, e.g. 'Project Gamma'."),
    ] = None,
    dry_run: scaffold.DryRun = False,
    lock: scaffold.Lock = True,
) -> None:
    """Create packages/dept_<id> and add it to the workspace."""
    raw = scaffold.required(department_id, "--id", "Department id (e.g. project_gamma)")
    department = scaffold.check("--id", conventions.department_id, raw)
    default = conventions.humanize(department.removeprefix(conventions.DEPARTMENT_PREFIX))
    display = scaffold.check("--name", conventions.check_display_name, name or default)
    root = scaffold.REPO_ROOT
    if department in scaffold.repo_departments(root) or (root / "packages" / department).exists():
        raise scaffold.ScaffoldError(f"--id: packages/{department} already exists")
    taken = scaffold.department_names(root)
    if display in taken and taken[display] != department:
        raise scaffold.ScaffoldError(f"--name: {display!r} is already the name of {taken[display]}")

    plan = make_plan(root, department, display)
    plan.locks = lock
    if dry_run:
        plan.show()
        return
    plan.apply(then=(lambda: scaffold.uv_lock(root)) if lock else None)
    print(f"next: uv run airnub run {department}")


def make_plan(root: Path, department: str, display: str) -> scaffold.Plan:
    distribution = conventions.distribution_name(department)
    package = Path("packages") / department
    src = package / "src" / department
    context = {
        "department": department,
        "distribution": distribution,
        "display_name": display,
        "stages": STAGES,
        "work_pool": conventions.work_pool_name(department),
        "deployment_names": {s: Identity(department, s).deployment_name for s in STAGES},
    }
    plan = scaffold.Plan(root)
    # The root files first: a malformed one is named before ruff (which reads the root
    # pyproject.toml for its settings) formats anything.
    plan.edit[Path("pyproject.toml")] = scaffold.add_workspace_member(root, distribution)
    compose = scaffold.add_compose_worker(root, department)
    if compose is not None:
        plan.edit[Path("docker-compose.yml")] = compose
    plan.render(package / "pyproject.toml", "department/pyproject.toml.j2", **context)
    plan.render(package / "README.md", "department/README.md.j2", **context)
    plan.render(package / "prefect.yaml", "department/prefect.yaml.j2", **context)
    plan.render(src / "__init__.py", "department/__init__.py.j2", **context)
    for stage in STAGES:
        flow_file = src / f"{stage}{conventions.flow_suffix(department)}.py"
        plan.render(flow_file, "department/stage_flow.py.j2", **context, stage=stage)
        plan.empty(src / stage / "__init__.py")
        plan.empty(src / stage / "tasks" / "__init__.py")
        plan.render(
            src / "configs" / "variables" / stage / "README.md",
            "department/configs_readme.md.j2",
            **context,
            stage=stage,
        )
    plan.render(package / "tests" / "conftest.py", "department/conftest.py.j2", **context)
    plan.render(package / "tests" / "test_stages.py", "department/test_stages.py.j2", **context)
    return plan


if __name__ == "__main__":
    scaffold.run(app)
