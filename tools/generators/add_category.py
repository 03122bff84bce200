"""Create a category in a department's stage, doing that stage's job.

It gets the category flow ``<action>_<category>_flow_dept_<id>.py``, a ``tasks/``
folder, a config YAML read by the flow's settings model, and tests that assert its
real outputs. The stage orchestrator finds it with no edit. By stage:

- ingestion: downloads its configured sources (a sample CSV shipped with it, so it
  runs offline) and declares the download manifest as its output;
- processing: reads its upstream (``--reads``), checks each row against a schema and
  writes ``table.csv`` and ``rejected.json``;
- analysis: reads its upstream (``--reads``), writes a summary to ``report.md`` and
  publishes it as a Prefect markdown artifact.

``--reads STAGE/CATEGORY[:NAME]`` names the upstream; it defaults to the department's
only category of the stage before, and NAME to the one output of it that the template
reads (a CSV table or a download manifest). With ``--with-subflows`` the category also
gets the spec's ``subflows/`` folder with a helper flow.

    uv run python tools/generators/add_category.py --department project_gamma \\
        --stage processing --id daily_totals --reads ingestion/weather_feed
"""

from pathlib import Path
from typing import Annotated

import scaffold
import typer
import upstream
from airnub_core import conventions

app = scaffold.app(__doc__)


@app.command()
def main(
    department: scaffold.DepartmentOption = None,
    stage: scaffold.StageOption = None,
    category_id: Annotated[
        str | None, typer.Option("--id", help="Category id, lowercase snake_case.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="Verb the flow's name starts with; defaults to the stage's: "
            + ", ".join(f"{s} -> {a}" for s, a in conventions.STAGE_ACTIONS.items()),
        ),
    ] = None,
    reads: Annotated[
        str | None,
        typer.Option(
            upstream.OPTION,
            help=f"What a processing or analysis category reads, {upstream.FORM}; defaults"
            " to the department's only category of the stage before.",
        ),
    ] = None,
    with_subflows: Annotated[
        bool, typer.Option("--with-subflows", help="Add a subflows/ folder with a helper flow.")
    ] = False,
    dry_run: scaffold.DryRun = False,
) -> None:
    """Create a category folder, its flow, config, tests and (ingestion) sample source."""
    root = scaffold.REPO_ROOT
    dept, stage = scaffold.department_and_stage(department, stage)
    category = scaffold.check(
        "--id", conventions.check_category, scaffold.required(category_id, "--id", "Category id")
    )
    verb = scaffold.check(
        "--action", conventions.check_identifier, action or conventions.STAGE_ACTIONS[stage]
    )
    existing = dept.src / stage / category
    if existing.exists():
        raise scaffold.ScaffoldError(f"--id: {existing.relative_to(root)} already exists")
    source = None
    if stage != conventions.STAGES[0] or reads is not None:
        source = upstream.resolve(scaffold.department_tree(dept), stage, reads)
    plan = make_plan(root, dept, stage, category, verb, with_subflows, source)
    if dry_run:
        plan.show()
        return
    plan.apply()
    print(f"next: uv run airnub run {dept.id} {stage} --category {category}")


def make_plan(
    root: Path,
    dept: scaffold.Department,
    stage: str,
    category: str,
    action: str,
    with_subflows: bool,
    source: upstream.Upstream | None = None,
) -> scaffold.Plan:
    flow_function = scaffold.check("--action", conventions.check_identifier, f"{action}_{category}")
    flow_module = f"{flow_function}{conventions.flow_suffix(dept.id)}"
    context = {
        "department": dept.id,
        "stage": stage,
        "category": category,
        "flow_function": flow_function,
        "flow_module": flow_module,
        "with_subflows": with_subflows,
        "subflow_suffix": conventions.subflow_suffix(dept.id),
        "upstream": source,
    }
    package = Path(dept.root.relative_to(root))
    src = package / "src" / dept.id
    folder = src / stage / category
    plan = scaffold.Plan(root)
    plan.empty(folder / "__init__.py")
    plan.render(folder / f"{flow_module}.py", f"category/{stage}/flow.py.j2", **context)
    plan.empty(folder / "tasks" / "__init__.py")
    if with_subflows:
        plan.empty(folder / "subflows" / "__init__.py")
        subflow = f"describe_outputs{conventions.subflow_suffix(dept.id)}.py"
        plan.render(folder / "subflows" / subflow, "category/subflow.py.j2", **context)
    config = src / "configs" / "variables" / stage / f"{category}.yaml"
    plan.render(config, f"category/{stage}/config.yaml.j2", **context)
    if stage == conventions.STAGES[0]:
        plan.render(src / "sample_data" / category / "example.csv", "category/example.csv.j2")
    test = package / "tests" / f"test_{stage}_{category}.py"
    plan.render(test, f"category/{stage}/test.py.j2", **context)
    return plan


if __name__ == "__main__":
    scaffold.run(app)
