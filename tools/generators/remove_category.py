"""Remove a category from a department's stage: the reverse of ``add_category.py``.

It removes ``<stage>/<category>/`` (flow, tasks, subflows), its config files
(``configs/variables/<stage>/<category>.yaml``, its ``<category>.<env>.yaml`` overlays
and its tasks' configs), its tests, and its ``sample_data/<category>/`` unless a
category of the same id in another stage still reads it. A category that the
department's ``prefect.yaml`` deploys is refused until that entry is gone. The stage
orchestrator needs no edit: it finds its categories. All or nothing, like the others.

    uv run python tools/generators/remove_category.py --department project_gamma \\
        --stage ingestion --id weather_feed
"""

import ast
from pathlib import Path
from typing import Annotated

import scaffold
import typer
from airnub_core import conventions
from airnub_platform import prefect_yaml
from airnub_platform.check import imported_modules

app = scaffold.app(__doc__)


@app.command()
def main(
    department: scaffold.DepartmentOption = None,
    stage: scaffold.StageOption = None,
    category_id: Annotated[str | None, typer.Option("--id", help="The category's id.")] = None,
    dry_run: scaffold.DryRun = False,
) -> None:
    """Remove a category's folder, configs, sample data and tests."""
    root = scaffold.REPO_ROOT
    dept, stage = scaffold.department_and_stage(department, stage)
    raw = scaffold.required(category_id, "--id", "Category id to remove")
    category = scaffold.find_category(dept, stage, raw, option="--id")
    refuse_deployed(root, dept, f"{dept.id}.{stage}.{category}.")
    refuse_read(dept, stage, category)
    plan = make_plan(root, dept, stage, category)
    refuse_imported(root, dept, f"{dept.id}.{stage}.{category}", plan.remove)
    if dry_run:
        plan.show()
        return
    plan.apply()


def refuse_deployed(root: Path, dept: scaffold.Department, module_prefix: str) -> None:
    """A prefect.yaml entry whose entrypoint lives under ``module_prefix`` would break."""
    path = dept.root / prefect_yaml.FILE_NAME
    if not path.is_file():
        return
    where = path.relative_to(root)
    try:  # read as `airnub deployments write` reads it: bounded, no aliases
        data = prefect_yaml.load(prefect_yaml.read(path))
    except prefect_yaml.PrefectYamlError as error:
        raise scaffold.ScaffoldError(str(error.at(where))) from None
    for index, entry in enumerate(data.get("deployments") or []):
        if not isinstance(entry, dict):
            continue
        if str(entry.get("entrypoint", "")).startswith(module_prefix):
            raise scaffold.ScaffoldError(
                f"--id: {where}: deployments[{index}] deploys it; remove that entry first"
            )


def refuse_read(dept: scaffold.Department, stage: str, category: str) -> None:
    """A later category that declares an input from this one would lose it."""
    for reader in scaffold.department_tree(dept).categories:
        try:
            inputs, _ = reader.contracts
        except Exception:  # a module that does not import reads nothing we can know of
            continue
        for item in inputs:
            if (item.stage, item.category) == (stage, category):
                raise scaffold.ScaffoldError(
                    f"--id: {reader.key} reads {item.key}; remove that category or change"
                    " its contract first"
                )


def refuse_imported(root: Path, dept: scaffold.Department, package: str, going: list[Path]) -> None:
    """A test module that stays behind and imports the category would stop collecting."""
    gone = {root / path for path in going}
    for path in sorted((dept.root / "tests").rglob("*.py")):
        if path in gone or not path.is_file():
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=path.name)
        except (SyntaxError, ValueError, RecursionError):
            continue  # `airnub check` reports a test that does not parse
        if any(m == package or m.startswith(f"{package}.") for m in imported_modules(tree)):
            raise scaffold.ScaffoldError(
                f"--id: {path.relative_to(root)} imports {package}; remove or change it first"
            )


def make_plan(root: Path, dept: scaffold.Department, stage: str, category: str) -> scaffold.Plan:
    src = dept.src.relative_to(root)
    tests = dept.root.relative_to(root) / "tests"
    configs = src / "configs" / "variables" / stage
    found = [src / stage / category, configs / category]
    found += sorted(p.relative_to(root) for p in (root / configs).glob(f"{category}.*yaml"))
    found += [tests / f"test_{stage}_{category}.py"]
    found += sorted(
        p.relative_to(root) for p in (root / tests).glob(f"test_task_{stage}_{category}_*.py")
    )
    elsewhere = [s for s in conventions.STAGES if s != stage and (dept.src / s / category).is_dir()]
    if not elsewhere:
        found.append(src / "sample_data" / category)
    plan = scaffold.Plan(root)
    plan.remove = [p for p in found if (root / p).exists()]
    return plan


if __name__ == "__main__":
    scaffold.run(app)
