"""What the three generators share: arguments, validation, rendering and writing.

Names are checked with ``airnub_core.conventions``, the one place the rules live.
Files are rendered from the Jinja2 templates beside this module, written to
temporary files next to their targets and renamed into place only when every
one of them rendered; any failure (or Ctrl-C) afterwards removes what was
placed and restores the files that were edited, ``uv.lock`` included.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
import yaml
from airnub_core import conventions
from airnub_core.conventions import ConventionError
from airnub_core.storage import plain_write_mode
from jinja2 import Environment, FileSystemLoader, StrictUndefined

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "templates"


DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Only list what it would create, edit or remove.")
]
Lock = Annotated[bool, typer.Option(help="Run `uv lock` afterwards.")]
DepartmentIdOption = Annotated[
    str | None,
    typer.Option("--id", help="Department id, lowercase snake_case, with or without dept_."),
]
CategoryOption = Annotated[
    str | None, typer.Option("--category", help="Category id; omit for a stage-level task.")
]
DepartmentOption = Annotated[
    str | None, typer.Option("--department", help="Department id, e.g. dept_project_alpha.")
]
StageOption = Annotated[
    str | None, typer.Option("--stage", help=f"One of: {', '.join(conventions.STAGES)}.")
]


class ScaffoldError(Exception):
    """A refusal: the message is one line naming the argument, file or field."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: raised like Ctrl-C, so the undo path runs for them all."""


def _interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum))


def app(help_text: str) -> typer.Typer:
    return typer.Typer(
        add_completion=False, help=help_text, rich_markup_mode=None, pretty_exceptions_enable=False
    )


def run(application: typer.Typer) -> None:
    """Run a generator; refusals print one line on stderr and exit 1, and a signal
    (Ctrl-C, SIGTERM, SIGHUP) exits non-zero after everything written was undone."""
    # SIGINT too: a parent may have started us with it ignored, and Ctrl-C must still undo.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    try:
        with _one_at_a_time(REPO_ROOT):
            application(standalone_mode=False)
    except (ScaffoldError, ConventionError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except (typer.Abort, KeyboardInterrupt, Interrupted) as stop:
        signum = stop.args[0] if isinstance(stop, Interrupted) else signal.SIGINT
        print(f"error: interrupted ({signum.name}); nothing was changed", file=sys.stderr)
        raise SystemExit(128 + signum) from None  # the shell's convention: 130, 143, 129
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except typer.TyperException as error:  # usage errors: one line as well
        format_message = getattr(error, "format_message", None)
        print(f"error: {format_message() if format_message else error}", file=sys.stderr)
        raise SystemExit(getattr(error, "exit_code", 2)) from None


LOCK_FILE = ".airnub-generators.lock"
PARKING_PREFIX = ".airnub-removing-"
MANIFEST = "MANIFEST"  # in a parking folder: "<index>\t<original path>" per line


@contextmanager
def _one_at_a_time(root: Path) -> Iterator[None]:
    """Hold the workspace's generator lock: two generators editing the root files at
    once would each restore its own snapshot over the other's edit."""
    with open(root / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScaffoldError(
                f"another generator is running in {root}; try again when it has finished"
            ) from None
        parked = sorted(root.glob(f"{PARKING_PREFIX}*"))
        if parked:
            raise ScaffoldError(
                f"{parked[0].name} holds what an interrupted remover set aside (its {MANIFEST}"
                " lists where each came from): move them back, or delete it, then retry"
            )
        yield


def required(value: str | None, option: str, question: str) -> str:
    """The option's value; prompt for it only when it is missing and stdin is a terminal."""
    if value is not None:
        return value
    if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
        raise ScaffoldError(f"{option} is required (stdin is not a terminal, so no prompt)")
    return typer.prompt(question)


def check(option: str, validate: Callable[[str], str], value: str) -> str:
    """Run a conventions check and name the offending option in its message."""
    try:
        return validate(value)
    except ConventionError as error:
        raise ScaffoldError(f"{option}: {error}") from None


# --- the repository -------------------------------------------------------------------


@dataclass(frozen=True)
class Department:
    id: str
    root: Path  # packages/dept_<id>

    @property
    def src(self) -> Path:
        return self.root / "src" / self.id


def repo_departments(root: Path) -> dict[str, Department]:
    """Departments in the working tree: ``packages/dept_*`` folders with a pyproject.toml."""
    packages = root / "packages"
    return {
        p.name: Department(p.name, p)
        for p in sorted(packages.glob(f"{conventions.DEPARTMENT_PREFIX}*"))
        if (p / "pyproject.toml").is_file()
    }


def find_department(root: Path, value: str) -> Department:
    department = check("--department", conventions.department_id, value)
    known = repo_departments(root)
    if department not in known:
        raise ScaffoldError(f"--department: {conventions.unknown('department', department, known)}")
    return known[department]


def find_stage(value: str) -> str:
    return check("--stage", conventions.check_stage, value)


def stage_categories(dept: Department, stage: str) -> list[str]:
    """The categories in a department's stage folder."""
    return sorted(
        p.name
        for p in (dept.src / stage).iterdir()
        if (p / "__init__.py").is_file() and p.name not in conventions.RESERVED_NAMES
    )


def find_category(dept: Department, stage: str, value: str, option: str = "--category") -> str:
    category = check(option, conventions.check_category, value)
    known = stage_categories(dept, stage)
    if category not in known:
        message = conventions.unknown(f"{stage} category of {dept.id}", category, known)
        raise ScaffoldError(f"{option}: {message}")
    return category


def department_names(root: Path) -> dict[str, str]:
    """Display name -> department id, read from the tree (not what happens to be installed)."""
    names = {}
    for dept in repo_departments(root).values():
        data = tomllib.loads((dept.root / "pyproject.toml").read_text(encoding="utf-8"))
        entries = data.get("project", {}).get("entry-points", {})
        for display, value in entries.get(conventions.ENTRY_POINT_GROUP, {}).items():
            names[display] = value
    return names


def department_and_stage(department: str | None, stage: str | None) -> tuple[Department, str]:
    """The --department and --stage a category or task goes into, asked for if missing."""
    dept = find_department(REPO_ROOT, required(department, "--department", "Department id"))
    return dept, find_stage(required(stage, "--stage", "Stage"))


# --- rendering ------------------------------------------------------------------------


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        autoescape=False,
    )
    # JSON strings are valid TOML basic strings and YAML double-quoted scalars alike.
    env.filters["quoted"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["title"] = conventions.humanize
    env.filters["camel"] = lambda value: "".join(w.capitalize() for w in value.split("_"))
    return env


def render_template(template: str, **context: object) -> str:
    """One template under ``templates/`` rendered, as the generators write it (before ruff)."""
    return _environment().get_template(template).render(**context)


@dataclass
class Plan:
    """Files to create (relative path -> text), existing files to rewrite, and files or
    folders to remove."""

    root: Path
    create: dict[Path, str] = field(default_factory=dict)
    edit: dict[Path, str] = field(default_factory=dict)
    remove: list[Path] = field(default_factory=list)
    locks: bool = False  # `uv lock` runs afterwards, rewriting uv.lock

    def render(self, target: Path | str, template: str, **context: object) -> None:
        text = render_template(template, **context)
        if str(target).endswith(".py"):
            text = _ruff(self.root / target, text)
        self.create[Path(target)] = text

    def empty(self, target: Path | str) -> None:
        self.create[Path(target)] = ""

    def show(self) -> None:
        for path in self.remove:
            print(f"remove {_shown(self.root, path)}")
        for path in sorted(self.create):
            print(f"create {path}")
        for path in sorted(self.edit):
            print(f"edit   {path}")
        if self.locks:
            print("edit   uv.lock (uv lock)")

    def refuse_existing(self) -> None:
        for path in sorted(self.create):
            if (self.root / path).exists():
                raise ScaffoldError(f"{path} already exists; refusing to overwrite it")

    def apply(self, then: Callable[[], None] | None = None) -> None:
        """Write everything, run ``then``, and undo it all if anything fails.

        What is removed is first moved to a parking folder at the root (outside
        ``packages/``, so the workspace no longer sees it), with a manifest of where
        each came from, and deleted only once everything succeeded. From that commit
        point on, signals wait: the cleanup and the report always finish."""
        self.refuse_existing()
        removed = [_shown(self.root, path, count=False) for path in self.remove]
        parking = None
        if self.remove:
            parking = Path(tempfile.mkdtemp(dir=self.root, prefix=PARKING_PREFIX))
            lines = [f"{index}\t{path}" for index, path in enumerate(self.remove)]
            (parking / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
        moved: list[tuple[Path, Path]] = []
        try:
            with _undo_on_failure(self.root, [*self.edit, Path("uv.lock")]) as created:
                for index, path in enumerate(self.remove):
                    assert parking is not None  # made above whenever there is something to remove
                    moved.append((self.root / path, parking / str(index)))
                    os.rename(*moved[-1])
                staged = {
                    path: _stage(self.root / path, text, created)
                    for path, text in self.create.items()
                }
                for path, temp in staged.items():
                    target = self.root / path
                    if target.exists():  # appeared since we checked: never clobber it
                        raise ScaffoldError(f"{path} already exists; refusing to overwrite it")
                    os.replace(temp, target)
                    created.append(target)
                for path, text in self.edit.items():
                    temp = _stage(self.root / path, text, created)
                    os.replace(temp, self.root / path)
                if then is not None:
                    then()
        except BaseException:
            for original, parked in reversed(moved):
                if parked.exists():
                    os.rename(parked, original)
            if parking is not None:
                (parking / MANIFEST).unlink()
                parking.rmdir()  # empty again; fails loudly rather than delete what it holds
            raise
        _hold_signals()  # committed: a signal now must not report "nothing was changed"
        if parking is not None:
            shutil.rmtree(parking)
        for shown in removed:
            print(f"removed {shown}")
        for path in sorted(self.create):
            print(f"created {path}")
        for path in sorted(self.edit):
            print(f"edited  {path}")


def _hold_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def _shown(root: Path, path: Path, count: bool = True) -> str:
    """``path``, and for a folder a trailing slash and how many files it holds."""
    if not (root / path).is_dir():
        return str(path)
    files = sum(1 for p in (root / path).rglob("*") if p.is_file())
    return f"{path}/ ({files} files)" if count else f"{path}/"


def _ruff(target: Path, source: str) -> str:
    """Sort imports and format like the repository's own ruff config, so long names
    wrap the way ``ruff format --check`` expects. Without ruff the text stays as is."""
    ruff = shutil.which("ruff")
    if ruff is None:
        return source
    for command in (["check", "--select", "I", "--fix-only", "--quiet"], ["format", "--quiet"]):
        done = subprocess.run(
            [ruff, *command, "--stdin-filename", str(target), "-"],
            input=source,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ScaffoldError(f"{target}: ruff {command[0]} failed: {done.stderr.strip()}")
        source = done.stdout
    return source


def _stage(target: Path, text: str, created: list[Path]) -> Path:
    """Write ``text`` to a hidden temporary file beside ``target``; record new folders."""
    missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir()
        created.append(folder)
    if target.exists() and not target.stat().st_mode & stat.S_IWUSR:
        raise ScaffoldError(f"{target}: read-only; refusing to replace it")
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new")
    created.append(Path(temp))
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.chmod(temp, plain_write_mode(target))  # mkstemp alone makes 0600
    return Path(temp)


@contextmanager
def _undo_on_failure(root: Path, backed_up: list[Path]) -> Iterator[list[Path]]:
    saved = {p: (root / p).read_bytes() for p in backed_up if (root / p).exists()}
    created: list[Path] = []
    try:
        yield created
    except BaseException:
        _hold_signals()  # let the undo finish
        for path in reversed(created):  # newest first, so folders are empty when reached
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)  # a folder this run created
            else:
                path.unlink(missing_ok=True)
        for path, content in saved.items():
            if (root / path).read_bytes() != content:
                (root / path).write_bytes(content)
        raise
    finally:
        for path in created:  # staged temp files already renamed are gone; stray ones go
            if path.name.endswith(".new") and path.exists():
                path.unlink()


# --- the workspace --------------------------------------------------------------------


def _read_toml(path: Path) -> tuple[str, dict]:
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScaffoldError(f"{path}: not valid TOML: {error}") from None


_DEPENDENCIES = re.compile(r"^dependencies\s*=\s*\[", re.MULTILINE)
# One element of a TOML array of strings, with the comma after it, if any.
_ELEMENT = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _dependency_array(path: Path, text: str) -> tuple[int, int]:
    """Where [project].dependencies' brackets are: (index of '[', index of ']')."""
    project = re.search(r"^\[project\]\s*$", text, re.MULTILINE)
    found = _DEPENDENCIES.search(text, project.end()) if project else None
    if found is None:
        raise ScaffoldError(f"{path}: no [project] dependencies = [...] to edit")
    position = found.end()
    while True:  # skip strings, so a ']' inside one ("x[extra]") is not the end
        element = _ELEMENT.search(text, position)
        close = text.index("]", position)
        if element is None or element.start() > close:
            return found.end() - 1, close
        position = element.end()


def add_workspace_member(root: Path, distribution: str) -> str:
    """The root pyproject.toml with ``distribution`` added to its dependencies and sources,
    keeping the array's layout (one line, or one element per line)."""
    path = root / "pyproject.toml"
    text, _ = _read_toml(path)
    start, end = _dependency_array(path, text)
    body = text[start + 1 : end]
    item = json.dumps(distribution)
    if "\n" in body:  # one element per line: a new last line, indented like the others
        indent = re.search(r"\n([ \t]*)\S", body)
        lines = body.rstrip(" \t")
        comma = "" if not lines.strip() or lines.rstrip().endswith(",") else ","
        body = f"{lines.rstrip()}{comma}\n{indent.group(1) if indent else '    '}{item},\n"
    else:
        body = f"{body.rstrip()}, {item}" if body.strip() else item
    text = f"{text[: start + 1]}{body}{text[end:]}"
    section = text.index("[tool.uv.sources]\n")
    at = text.find("\n\n", section) + 1 or len(text)  # the end of that section
    text = f"{text[:at]}{distribution} = {{ workspace = true }}\n{text[at:]}"
    _must_have(path, text, distribution, present=True)
    return text


def _must_have(path: Path, text: str, distribution: str, present: bool) -> None:
    """Check the edited text parses and lists ``distribution`` (or does not) in both places."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScaffoldError(
            f"{path}: editing it would break it ({error}); edit it by hand"
        ) from None
    listed = distribution in data["project"]["dependencies"]
    sourced = distribution in data.get("tool", {}).get("uv", {}).get("sources", {})
    if (listed, sourced) != (present, present):
        verb = "add" if present else "remove"
        raise ScaffoldError(f"{path}: could not {verb} {distribution}; edit it by hand")


def add_compose_worker(root: Path, department: str) -> str | None:
    """docker-compose.yml with a worker service for ``department``, or None if there is none."""
    path = root / "docker-compose.yml"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    service = f"worker-{conventions.distribution_name(department)}"
    if f"\n  {service}:\n" in text:
        return None
    if "\nvolumes:\n" not in text:
        raise ScaffoldError(f"{path}: no top-level 'volumes:' to add {service} before")
    block = (
        f"  {service}:\n    <<: *worker\n    build:\n      context: .\n      args:\n"
        f"        DEPARTMENT: {department}\n\n"
    )
    return text.replace("\nvolumes:\n", f"\n{block.rstrip()}\n\nvolumes:\n", 1)


def _die_with_parent() -> None:
    """In a child: be killed when the generator dies, even by SIGKILL (Linux), so an
    orphaned ``uv lock`` cannot rewrite the lock after the generator is gone."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def uv_lock(root: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        raise ScaffoldError("uv is not on PATH; install it with `pip install uv`")
    done = subprocess.run([uv, "lock"], cwd=root, capture_output=True, text=True,
                          preexec_fn=_die_with_parent)  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ScaffoldError(f"uv lock failed in {root}: {last}")


def remove_workspace_member(root: Path, distribution: str) -> str:
    """The root pyproject.toml without ``distribution`` in its dependencies and sources:
    the exact reverse of :func:`add_workspace_member`."""
    path = root / "pyproject.toml"
    text, _ = _read_toml(path)
    start, end = _dependency_array(path, text)
    item = re.escape(json.dumps(distribution))
    body = text[start + 1 : end]
    for pattern in (rf"\n[ \t]*{item},?[ \t]*(?=\n)", rf"{item}\s*,\s*", rf",?\s*{item}"):
        body, count = re.subn(pattern, "", body, count=1)
        if count:
            break
    text = f"{text[: start + 1]}{body}{text[end:]}"
    source = re.compile(rf"^{re.escape(distribution)} = \{{ workspace = true \}}\n", re.MULTILINE)
    text = source.sub("", text, count=1)
    _must_have(path, text, distribution, present=False)
    return text


def remove_compose_worker(root: Path, department: str) -> str | None:
    """docker-compose.yml without ``department``'s worker service, or None if it has none."""
    path = root / "docker-compose.yml"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    service = f"worker-{conventions.distribution_name(department)}"
    # The service's block: its key line, then indented (or blank) lines up to the next key.
    block = re.compile(
        rf"^  {re.escape(service)}:\n(?:(?:    .*)?\n)*?(?=  \S|\S|\Z)", re.MULTILINE
    )
    edited, count = block.subn("", text, count=1)
    if not count:
        return None
    # A hand-edited block (a comment at column 0, say) could end the match early and leave
    # its keys under another service: accept the edit only if exactly that service went.
    before, after = yaml.safe_load(text), yaml.safe_load(edited)
    before.get("services", {}).pop(service, None)
    if after != before:
        raise ScaffoldError(f"{path}: the {service} service is not as add_department wrote it;"
                            " remove it by hand")  # fmt: skip
    return edited
