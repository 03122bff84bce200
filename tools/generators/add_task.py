"""Create a task wrapper at stage level or in a category, with a test.

The task lands in ``<stage>/tasks/`` or ``<stage>/<category>/tasks/`` as
``<id>_task_dept_<id>.py``. With ``--with-config`` it also reads a settings
file, ``configs/variables/<stage>/[<category>/]<id>.yaml``, validated by a model.

    uv run python tools/generators/add_task.py --department project_gamma \\
        --stage ingestion --category weather_feed --id count_outputs --with-config
"""

from pathlib import Path
from typing import Annotated

import scaffold
import typer
from airnub_core import conventions

app = scaffold.app(__doc__)


@app.command()
def main(
    department: scaffold.DepartmentOption = None,
    stage: scaffold.StageOption = None,
    category: scaffold.CategoryOption = None,
    task_id: Annotated[
        str | None, typer.Option("--id", help="Task name, lowercase snake_case.")
    ] = None,
    with_config: Annotated[
        bool, typer.Option("--with-config", help="Also create a settings file the task reads.")
    ] = False,
    dry_run: scaffold.DryRun = False,
) -> None:
    """Create a task wrapper, its test and optionally its config file."""
    root = scaffold.REPO_ROOT
    dept, stage = scaffold.department_and_stage(department, stage)
    if category is not None:
        scaffold.find_category(dept, stage, category)
    name = scaffold.check(
        "--id",
        lambda v: conventions.check_category(v, "task id"),
        scaffold.required(task_id, "--id", "Task name"),
    )
    plan = make_plan(root, dept, stage, category, name, with_config)
    if dry_run:
        plan.show()
        return
    plan.apply()


def make_plan(
    root: Path,
    dept: scaffold.Department,
    stage: str,
    category: str | None,
    task: str,
    with_config: bool,
) -> scaffold.Plan:
    node = [stage, *([category] if category else [])]
    task_module = f"{task}{conventions.task_suffix(dept.id)}"
    where = f"{dept.id} {'/'.join(node)}"
    context = {
        "task": task,
        "task_module": task_module,
        "where": where,
        "with_config": with_config,
        "module_parts": [dept.id, *node, "tasks", task_module],
    }
    package = Path(dept.root.relative_to(root))
    src = package / "src" / dept.id
    tasks = src.joinpath(*node, "tasks")
    plan = scaffold.Plan(root)
    if not (root / tasks / "__init__.py").exists():
        plan.empty(tasks / "__init__.py")
    plan.render(tasks / f"{task_module}.py", "task/task.py.j2", **context)
    if with_config:
        config = src.joinpath("configs", "variables", *node, f"{task}.yaml")
        plan.render(config, "task/config.yaml.j2", **context)
    test = package / "tests" / f"test_task_{'_'.join(node)}_{task}.py"
    plan.render(test, "task/test_task.py.j2", **context)
    return plan


if __name__ == "__main__":
    scaffold.run(app)
