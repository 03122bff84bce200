"""Create a task wrapper at stage level or in a category, with a test.

The task lands in ``<stage>/tasks/`` or ``<stage>/<category>/tasks/`` as
``<id>_task_dept_<id>.py``. With ``--with-config`` it also reads a settings
file, ``configs/variables/<stage>/[<category>/]<id>.yaml``, validated by a model, and
a category task is wired into the category's flow: imported, and called on the flow's
``outputs`` at the ``# airnub: tasks run here`` line. Where that line is gone (or the
call would not land in the flow's body), it prints the file, line and code to add.

    uv run python tools/generators/add_task.py --department project_gamma \\
        --stage ingestion --category weather_feed --id count_outputs --with-config
"""

from pathlib import Path
from typing import Annotated

import scaffold
import typer
import wiring
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
    notes = []
    if with_config:
        notes = wire(plan, dept, stage, category, name)
    if dry_run:
        plan.show()
    else:
        plan.apply()
    if notes:
        print("\n".join(notes))


def wire(
    plan: scaffold.Plan, dept: scaffold.Department, stage: str, category: str | None, task: str
) -> list[str]:
    """Wire the task into its category's flow, as an edit of ``plan``; or the lines
    telling where to call it."""
    module = f"{task}{conventions.task_suffix(dept.id)}"
    if category is None:
        return [
            f"note: a stage-level task is called by nothing yet; call it in a flow of {stage}"
            f" before its return, on the files that flow wrote:",
            f"  from {dept.id}.{stage}.tasks.{module} import {task}",
            f"  {task}({wiring.OUTPUTS})",
        ]
    how = wiring.Wiring(task, module)
    node = scaffold.department_tree(dept).stage(stage).category(category)
    assert node is not None  # find_category found its folder
    if node.problem:
        return [f"note: {task} is called by nothing yet ({node.problem}); add to its flow:",
                f"  {how.import_line}", f"  {how.call}"]  # fmt: skip
    shown = node.path.relative_to(plan.root)
    source = scaffold.read_text(node.path)
    try:
        edited = wiring.wire(source, how)
    except wiring.NotWired as why:
        lines = wiring.where_to_call(shown, source, how)
        return [f"note: {task} is called by nothing yet: {shown}: {why}; add:",
                *(f"  {line}" for line in lines)]  # fmt: skip
    plan.edit[shown] = scaffold.ruff(node.path, edited, reformat=False)
    return [f"wired: {shown} calls {how.call}"]


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
