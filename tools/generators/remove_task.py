"""Remove a task wrapper: the reverse of ``add_task.py``.

It removes ``<stage>/[<category>/]tasks/<task>_task_dept_<id>.py``, its config
(``configs/variables/<stage>/[<category>/]<task>.yaml`` and its overlays) and its
test, and takes the import and call ``add_task --with-config`` wired into the
category's flow out of it. A task that other code of the department still uses is
refused, naming the file. All or nothing, like the others.

    uv run python tools/generators/remove_task.py --department project_gamma \\
        --stage ingestion --category weather_feed --id count_outputs
"""

import re
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
    task_id: Annotated[str | None, typer.Option("--id", help="The task's name.")] = None,
    dry_run: scaffold.DryRun = False,
) -> None:
    """Remove a task wrapper, its config and its test."""
    root = scaffold.REPO_ROOT
    dept, stage = scaffold.department_and_stage(department, stage)
    node = [stage]
    if category is not None:
        node.append(scaffold.find_category(dept, stage, category))
    raw = scaffold.required(task_id, "--id", "Task name to remove")
    task = scaffold.check("--id", lambda v: conventions.check_category(v, "task id"), raw)
    module = f"{task}{conventions.task_suffix(dept.id)}"
    tasks = dept.src.joinpath(*node, "tasks")
    if not (tasks / f"{module}.py").is_file():
        known = sorted(
            p.stem.removesuffix(conventions.task_suffix(dept.id))
            for p in tasks.glob(f"*{conventions.task_suffix(dept.id)}.py")
        )
        where = f"task of {dept.id} {'/'.join(node)}"
        raise scaffold.ScaffoldError(f"--id: {conventions.unknown(where, task, known)}")
    wrapper = (tasks / f"{module}.py").relative_to(root)
    test = dept.root / "tests" / f"test_task_{'_'.join(node)}_{task}.py"
    plan = scaffold.Plan(root)
    if category is not None:
        unwire(plan, dept, stage, category, wiring.Wiring(task, module))
    # A use: the module's dotted path anywhere, or its name beside it (a relative import
    # from the folder that holds tasks/); a task of that name elsewhere is another one.
    dotted = re.compile(rf"\b{re.escape('.'.join([dept.id, *node, 'tasks', module]))}\b")
    named = re.compile(rf"\b{re.escape(module)}\b")
    owner = dept.src.joinpath(*node)
    for source in sorted([*dept.src.rglob("*.py"), *(dept.root / "tests").rglob("*.py")]):
        if source in (root / wrapper, test):
            continue
        shown = source.relative_to(root)
        text = plan.edit[shown] if shown in plan.edit else scaffold.read_text(source)
        if dotted.search(text) or (source.is_relative_to(owner) and named.search(text)):
            raise scaffold.ScaffoldError(f"--id: {shown} uses {module}; remove that use first")
    configs = dept.src.joinpath("configs", "variables", *node)
    found = [wrapper, test.relative_to(root)]
    found += sorted(p.relative_to(root) for p in configs.glob(f"{task}.yaml"))
    found += sorted(p.relative_to(root) for p in configs.glob(f"{task}.*.yaml"))
    plan.remove = [p for p in found if (root / p).exists()]
    if dry_run:
        plan.show()
        return
    plan.apply()


def unwire(
    plan: scaffold.Plan, dept: scaffold.Department, stage: str, category: str, how: wiring.Wiring
) -> None:
    """Take the import and call ``add_task`` wired into the category's flow out of it,
    as an edit of ``plan``; a flow without both, as written, is left to the check for
    uses (which names it)."""
    node = scaffold.department_tree(dept).stage(stage).category(category)
    if node is None or node.problem:
        return
    edited = wiring.unwire(scaffold.read_text(node.path), how)
    if edited is not None:
        shown = node.path.relative_to(plan.root)
        plan.edit[shown] = scaffold.ruff(node.path, edited, reformat=False)


if __name__ == "__main__":
    scaffold.run(app)
