"""``airnub usage``: per department, runs, failures, late runs and run time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from airnub_platform.cli._session import prefect_session, unreadable
from airnub_platform.cli._shared import console, fail, printable, say

if TYPE_CHECKING:
    from airnub_platform.usage import DepartmentUsage

FORMATS = ("table", "json")


def usage_command(
    since: Annotated[
        str, typer.Option("--since", help="How far back: 30m, 12h, 7d or 2w (at most 366 days).")
    ] = "7d",
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the report as a CSV file.")
    ] = None,
    png_path: Annotated[
        Path | None, typer.Option("--png", help="Also draw it as a bar chart, a PNG file.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", metavar="table|json")] = "table",
) -> None:
    """Per department, from the Prefect API: flow runs, failures (Failed or Crashed), late
    runs (Late, or started or still waiting over 60 s past their expected start) and run time."""
    # here, not above: pydantic, prefect and the runner are not for --help
    import json

    from pydantic import ValidationError

    from airnub_platform import runner, usage

    if output_format not in FORMATS:
        raise fail(f"--format: {printable(output_format[:40])!r} is not one of table, json")
    try:
        window = usage.parse_since(since)
    except usage.UsageError as error:
        raise fail(str(error)) from None
    targets = {option: path for option, path in (("--csv", csv_path), ("--png", png_path)) if path}
    for option, path in targets.items():
        check_target(option, path)
    if len({Path(path).resolve() for path in targets.values()}) < len(targets):
        raise fail("--csv and --png name the same file")
    if not runner.configured_api_url():
        raise fail("no Prefect API configured: set PREFECT_API_URL (or start `airnub dev`);"
                   " usage reads the runs a server holds")  # fmt: skip
    from prefect.client.orchestration import get_client

    with prefect_session() as url, get_client(sync_client=True) as client:
        try:
            found = usage.read_usage(client, window)
        except (json.JSONDecodeError, ValidationError) as error:
            raise fail(unreadable(url, error), 1) from None
    title = f"Usage over the last {since} at {url}"
    # made in memory first: a file appears whole, or not at all
    contents = {"--csv": lambda: usage.to_csv(found), "--png": lambda: usage.to_png(found, title)}
    files = {option: (path, contents[option]()) for option, path in targets.items()}
    for option, (path, data) in files.items():
        write(option, path, data)
    show(found, title, output_format)
    if output_format == "table":  # JSON's stdout stays JSON alone
        for path, _ in files.values():
            say(f"wrote {printable(str(path))}")


def check_target(option: str, path: Path) -> None:
    """Refuse, before the API is asked anything, a file that could not be written."""
    shown = printable(str(path))
    if not path.parent.is_dir():
        raise fail(f"{option}: {shown}: its folder does not exist")
    if path.is_symlink():
        raise fail(f"{option}: {shown}: refused, it is a symlink")
    if path.exists() and not path.is_file():
        raise fail(f"{option}: {shown}: not a regular file")


def write(option: str, path: Path, data: bytes) -> None:
    from airnub_core.storage import UnsafeOutputPath, write_bytes_atomic

    try:
        write_bytes_atomic(path, data)
    except (OSError, UnsafeOutputPath) as error:
        why = getattr(error, "strerror", None) or str(error)
        raise fail(f"{option}: {printable(str(path))}: cannot be written: {why}", 1) from None


def show(found: list[DepartmentUsage], title: str, output_format: str) -> None:
    import json

    from airnub_platform import usage

    if output_format == "json":
        typer.echo(json.dumps(usage.as_rows(found), indent=2))
        return
    table = Table(title=Text(title), title_justify="left")  # names are text, not markup
    for column in ("department", "runs", "failures", "late", "run time"):
        table.add_column(column, justify="left" if column == "department" else "right")
    for row in found:
        name = Text(printable(f"{row.display_name} ({row.department})"))
        table.add_row(name, str(row.runs), str(row.failures), str(row.late),
                      hours_minutes(row.run_time_seconds))  # fmt: skip
    console.print(table)


def hours_minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{seconds:.0f}s"
