"""What the six generators share: arguments, validation, rendering and writing.

Names are checked with ``airnub_core.conventions``, the one place the rules live.
Files are rendered from the templates in ``airnub_platform.scaffolding``, written to
temporary files next to their targets and renamed into place only when every
one of them rendered; any failure (or Ctrl-C, SIGTERM, SIGHUP) afterwards removes
what was placed and restores the files that were edited, ``uv.lock`` included. A
journal (see ``journal.py``) lets the next generator do the same for a run that was
killed outright. One generator at a time: a second one refuses.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
import yaml
from airnub_core import conventions, inventory, owners
from airnub_core.conventions import ConventionError
from airnub_core.storage import plain_write_mode
from airnub_platform import scaffolding
from journal import MANIFEST, Journal, JournalError
from journal import NAME as JOURNAL

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def app(help_text: str | None) -> typer.Typer:
    return typer.Typer(
        add_completion=False, help=help_text, rich_markup_mode=None, pretty_exceptions_enable=False
    )


def run(application: typer.Typer) -> None:
    """Run a generator; refusals print one line on stderr and exit 1, and a signal
    (Ctrl-C, SIGTERM, SIGHUP) exits non-zero after everything written was undone.
    Before its own work it undoes or finishes what a killed generator left (its journal)."""
    # SIGINT too: a parent may have started us with it ignored, and Ctrl-C must still undo.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    COMMAND[:] = [Path(sys.argv[0]).stem, *sys.argv[1:]]
    try:
        with _one_at_a_time(REPO_ROOT):
            recover(REPO_ROOT, dry_run="--dry-run" in sys.argv[1:])
            application(standalone_mode=False)
    except (ScaffoldError, ConventionError, JournalError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # a file it must read or write: named, in one line
        print(f"error: {_os_error(REPO_ROOT, error)}", file=sys.stderr)
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
COMMAND: list[str] = []  # this generator and its arguments, as the journal names it


def _os_error(root: Path, error: OSError) -> str:
    """``<file>: <reason>``, the file relative to the workspace when it is inside it."""
    name = Path(error.filename) if error.filename else None
    if name is not None and name.is_relative_to(root):
        name = name.relative_to(root)
    return f"{name}: {error.strerror}" if name is not None else str(error.strerror or error)


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
    """Departments in the working tree (the inventory's folders), installed or not."""
    return {name: Department(name, folder) for name, folder in inventory.folders(root).items()}


def find_department(root: Path, value: str) -> Department:
    department = check("--department", conventions.department_id, value)
    known = repo_departments(root)
    if department not in known:
        raise ScaffoldError(f"--department: {conventions.unknown('department', department, known)}")
    return known[department]


def find_stage(value: str) -> str:
    return check("--stage", conventions.check_stage, value)


def stage_categories(dept: Department, stage: str) -> list[str]:
    """The categories in a department's stage folder, as the inventory reads them."""
    return [category.name for category in inventory.at(dept.src, dept.id).stage(stage).categories]


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


# --- the inventory, as the working tree holds it ----------------------------------------


class _TreeDistribution(importlib.metadata.Distribution):
    """A department of the working tree as ``importlib.metadata`` sees an installed one:
    its name and its entry points (display name, owners, alerts), read from its
    pyproject.toml."""

    def __init__(self, distribution: str, groups: dict[str, dict[str, str]]) -> None:
        sections = "".join(
            f"[{group}]\n"
            + "".join(f"{name} = {value}\n" for name, value in sorted(points.items()))
            for group, points in groups.items()
        )
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0\n",
            "entry_points.txt": sections,
        }

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        return Path(path)  # it has no files to locate: its code is found on sys.path


class _TreeFinder(importlib.metadata.DistributionFinder):
    def __init__(self, found: _TreeDistribution) -> None:
        self.found = found

    def find_spec(self, *_args: object) -> None:
        return None  # it finds distributions only; modules come from sys.path

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context | None = None
    ) -> Iterator[importlib.metadata.Distribution]:
        name = context.name if context is not None else None
        if name is None or _normalized(name) == _normalized(self.found.metadata["Name"]):
            yield self.found


def _dig(data: object, *keys: str) -> object:
    """``data[k1][k2]...``, or None where a level is missing or not a table."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


# What a department declares beside its display name (airnub_core.owners).
OWNED_GROUPS = (owners.OWNERS_GROUP, owners.ALERTS_GROUP)


def known_as_installed(distribution: str, groups: dict[str, dict[str, str]]) -> None:
    """From now on, ``importlib.metadata`` in this process finds ``distribution`` with these
    entry points, as it will once ``uv sync`` installs it: what a generator renders from the
    metadata (owner tags in prefect.yaml) is then what `airnub check` expects."""
    sys.meta_path.insert(0, _TreeFinder(_TreeDistribution(distribution, groups)))


def department_tree(dept: Department) -> inventory.Department:
    """The inventory of ``dept`` as the working tree holds it, whether the environment
    running the generator has it installed, from elsewhere, or not yet (a department
    just added is installed by the next ``uv run``): its ``src/`` comes first on the
    import path and its entry point is read from its pyproject.toml."""
    path = dept.root / "pyproject.toml"
    _, data = _read_toml(path)
    group = conventions.ENTRY_POINT_GROUP
    name, entries = _dig(data, "project", "name"), _dig(data, "project", "entry-points", group)
    if not (isinstance(name, str) and isinstance(entries, dict) and dept.id in entries.values()):
        shown = path.relative_to(REPO_ROOT)
        raise ScaffoldError(f"{shown}: no [project.entry-points.{group!r}] names {dept.id}")
    if str(dept.src.parent) not in sys.path:
        sys.path.insert(0, str(dept.src.parent))
        declared = {group: _dig(data, "project", "entry-points", group) for group in OWNED_GROUPS}
        found = {group: {k: str(v) for k, v in points.items()} for group, points in declared.items()
                 if isinstance(points, dict)}  # fmt: skip
        known_as_installed(name, {**found, group: entries})
    return inventory.department(dept.id)


# --- rendering ------------------------------------------------------------------------


@dataclass
class Plan:
    """Files to create (relative path -> text), existing files to rewrite, and files or
    folders to remove."""

    root: Path
    create: dict[Path, str] = field(default_factory=dict)
    edit: dict[Path, str] = field(default_factory=dict)
    remove: list[Path] = field(default_factory=list)
    locks: bool = False  # `uv lock` runs afterwards, rewriting uv.lock
    uninstall: list[str] = field(default_factory=list)  # out of .venv once committed

    def render(self, target: Path | str, template: str, **context: object) -> None:
        text = scaffolding.render(template, **context)
        if str(target).endswith(".py"):
            text = ruff(self.root / target, text)
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

    def refuse_unwritable(self) -> None:
        """Every file it replaces, and every folder it writes in, must be writable: checked
        before the first change, so a read-only target is one line and no rollback."""
        replaced = [*self.edit, *([Path("uv.lock")] if self.locks else [])]
        for path in replaced:
            target = self.root / path
            if target.exists() and not (
                target.stat().st_mode & stat.S_IWUSR and os.access(target, os.W_OK)
            ):
                raise ScaffoldError(f"{path}: read-only; refusing to replace it")
        folders = {self.root: Path(JOURNAL)}
        for path in [*self.create, *replaced, *self.remove]:
            folders.setdefault(_first_existing((self.root / path).parent), path)
        for folder, path in folders.items():
            if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                shown = folder.relative_to(self.root) if folder != self.root else folder
                raise ScaffoldError(f"{shown}/: not writable, so {path} cannot be written")

    def apply(self, then: Callable[[], None] | None = None) -> None:
        """Write everything, run ``then``, and undo it all if anything fails.

        A journal records each step before it is taken, so that a run killed outright
        is undone (or finished, past the commit point) by the next generator. What is
        removed is first moved to a parking folder at the root (outside ``packages/``,
        so the workspace no longer sees it) and deleted only once everything succeeded.
        From that commit point on, signals wait: the cleanup and the report finish."""
        self.refuse_existing()
        self.refuse_unwritable()
        removed = [_shown(self.root, path, count=False) for path in self.remove]
        edited = [*self.edit, Path("uv.lock")]  # `then` may run `uv lock`
        journal = Journal.begin(self.root, COMMAND or ["generator"], edited, self.uninstall)
        try:
            self._write(journal)
            if then is not None:
                then()
        except BaseException as failure:
            _hold_signals()  # let the undo finish
            journal.undo()
            journal.close()
            if isinstance(failure, OSError):
                why = _os_error(self.root, failure)
                raise ScaffoldError(f"{why}; nothing was changed") from None
            raise
        _hold_signals()  # committed: a signal now must not report "nothing was changed"
        journal.commit()
        for distribution in self.uninstall:
            uninstall(self.root, distribution)
        journal.finish()
        journal.close()
        for shown in removed:
            print(f"removed {shown}")
        for path in sorted(self.create):
            print(f"created {path}")
        for path in sorted(self.edit):
            print(f"edited  {path}")

    def _write(self, journal: Journal) -> None:
        if self.remove:
            parking = Path(f"{PARKING_PREFIX}{secrets.token_hex(4)}")
            journal.note("park", parking)
            (self.root / parking).mkdir()
            lines = [f"{index}\t{path}" for index, path in enumerate(self.remove)]
            (self.root / parking / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
            for index, path in enumerate(self.remove):
                journal.note("move", path, parking / str(index))
                os.rename(self.root / path, self.root / parking / str(index))
        staged = {path: _stage(journal, path, text) for path, text in self.create.items()}
        for path, temp in staged.items():
            if (self.root / path).exists():  # appeared since we checked: never clobber it
                raise ScaffoldError(f"{path} already exists; refusing to overwrite it")
            journal.note("create", path)
            os.replace(self.root / temp, self.root / path)
        for path, text in self.edit.items():
            os.replace(self.root / _stage(journal, path, text), self.root / path)


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _hold_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def _shown(root: Path, path: Path, count: bool = True) -> str:
    """``path``, and for a folder a trailing slash and how many files it holds."""
    if not (root / path).is_dir():
        return str(path)
    files = sum(1 for p in (root / path).rglob("*") if p.is_file())
    return f"{path}/ ({files} files)" if count else f"{path}/"


def ruff(target: Path, source: str, reformat: bool = True) -> str:
    """Sort imports and format like the repository's own ruff config, so long names
    wrap the way ``ruff format --check`` expects; with ``reformat=False`` only sort the
    imports (an edit of a hand-written file touches nothing else). Without ruff the text
    stays as is."""
    executable = shutil.which("ruff")
    if executable is None:
        return source
    commands = [["check", "--select", "I", "--fix-only", "--quiet"]]
    commands += [["format", "--quiet"]] if reformat else []
    for command in commands:
        done = subprocess.run(
            [executable, *command, "--stdin-filename", str(target), "-"],
            input=source,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:  # its last line is the innermost cause
            why = (done.stderr.strip().splitlines() or ["no output"])[-1].strip()
            raise ScaffoldError(f"{target}: ruff {command[0]} failed: {why}")
        source = done.stdout
    return source


def _stage(journal: Journal, target: Path, text: str) -> Path:
    """Write ``text`` to a hidden temporary file beside ``target`` (both relative to the
    workspace), each new folder and the file recorded in the journal before it is made."""
    root = journal.root
    missing = [p for p in (target.parent, *target.parent.parents) if not (root / p).exists()]
    for folder in reversed(missing):
        journal.note("mkdir", folder)
        (root / folder).mkdir()
    if (root / target).exists() and not (root / target).stat().st_mode & stat.S_IWUSR:
        raise ScaffoldError(f"{target}: read-only; refusing to replace it")
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.new"
    journal.note("create", temp)
    fd = os.open(root / temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.chmod(root / temp, plain_write_mode(root / target))  # as a plain write would leave it
    return temp


def recover(root: Path, dry_run: bool = False) -> None:
    """Undo what a killed generator left before its commit point, or finish it after, and
    say which. A dry run refuses instead. Signals wait meanwhile: each step is repeatable,
    but a report of "nothing was changed" would be wrong halfway."""
    journal = Journal.load(root)
    if journal is None:
        return _refuse_orphans(root)
    action = "finish" if journal.committed else "undo"
    if dry_run:  # its listing would describe the half-done tree, and it changes nothing
        raise ScaffoldError(f"an interrupted {journal.shown_command} left {JOURNAL}/; run"
                            f" a generator without --dry-run to {action} it first")  # fmt: skip
    handlers = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM,
                                                               signal.SIGHUP)}  # fmt: skip
    try:
        done = journal.finish() if journal.committed else journal.undo()
        for distribution in journal.uninstall if journal.committed else []:
            uninstall(root, distribution)
            done.append(f"uninstalled {distribution}")
        journal.close()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    verb = "finished" if journal.committed else "undid"
    print(f"note: {verb} an interrupted {journal.shown_command}: "
          f"{'; '.join(done) or 'nothing was left to do'}")  # fmt: skip
    _refuse_orphans(root)


def _refuse_orphans(root: Path) -> None:
    """A parking folder no journal accounts for (an older generator's): a human decides."""
    parked = sorted(root.glob(f"{PARKING_PREFIX}*"))
    if parked:
        raise ScaffoldError(
            f"{parked[0].name} holds what an interrupted remover set aside (its {MANIFEST}"
            " lists where each came from): move them back, or delete it, then retry"
        )


def uninstall(root: Path, distribution: str) -> None:
    """Take a removed department out of the workspace's environment too: `uv run` only
    ever adds packages, so it would stay installed and still be listed as a department."""
    python = root / ".venv" / "bin" / "python"
    uv = shutil.which("uv")
    if not python.exists() or uv is None:
        return
    done = subprocess.run([uv, "pip", "uninstall", "--python", str(python), distribution],
                          cwd=root, capture_output=True, text=True,
                          preexec_fn=_die_with_parent)  # fmt: skip
    if done.returncode != 0:  # the removal itself is done; say what is left to do
        why = done.stderr.strip().splitlines()[-1:] or ["no output"]
        print(f"warning: could not uninstall {distribution} from .venv ({why[0]});"
              " run `uv sync --all-packages`", file=sys.stderr)  # fmt: skip


# --- the workspace --------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        raise ScaffoldError(f"{shown}: not UTF-8 text (byte {error.start})") from None


def _read_toml(path: Path) -> tuple[str, dict]:
    text = read_text(path)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScaffoldError(f"{path}: not valid TOML: {error}") from None


def _read_compose(path: Path) -> tuple[str, dict]:
    """docker-compose.yml's text and data; refused unless it is YAML with ``services:``."""
    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        why = getattr(error, "problem", None) or type(error).__name__
        raise ScaffoldError(f"{path}: not valid YAML ({why}{line})") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ScaffoldError(f"{path}: no top-level 'services:' mapping")
    return text, data


_DEPENDENCIES = re.compile(r"^dependencies\s*=\s*\[", re.MULTILINE)
_SOURCES = re.compile(r"^\[tool\.uv\.sources\][ \t]*(?:#.*)?$", re.MULTILINE)
_SECTION_END = re.compile(r"^(?:[ \t]*$|\[)", re.MULTILINE)
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
    section = _SOURCES.search(text)
    if section is None:
        raise ScaffoldError(f"{path}: no [tool.uv.sources] table to add {distribution} to")
    end = _SECTION_END.search(text, section.end() + 1)  # a blank line or the next table
    at = end.start() if end else len(text)
    if at == len(text) and not text.endswith("\n"):
        text, at = text + "\n", at + 1
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
    project, tool = data.get("project"), data.get("tool")
    dependencies = project.get("dependencies") if isinstance(project, dict) else None
    uv = tool.get("uv") if isinstance(tool, dict) else None
    sources = uv.get("sources") if isinstance(uv, dict) else None
    listed = isinstance(dependencies, list) and distribution in dependencies
    sourced = isinstance(sources, dict) and distribution in sources
    if (listed, sourced) != (present, present):
        verb = "add" if present else "remove"
        raise ScaffoldError(f"{path}: could not {verb} {distribution}; edit it by hand")


# The workers' image name in docker-compose.yml: compose fills in the variables.
COMPOSE_WORKER_IMAGE = "${{AIRNUB_REGISTRY:-airnub}}/{distribution}:${{AIRNUB_IMAGE_TAG:-local}}"
# The anchor of the build-args every worker shares (BASE_IMAGE, UV_IMAGE), when defined.
_BUILD_ARGS_ANCHOR = re.compile(r"^x-build-args: &build-args[ \t]*$", re.MULTILINE)


def compose_worker_image(department: str) -> str:
    return COMPOSE_WORKER_IMAGE.format(distribution=conventions.distribution_name(department))


def add_compose_worker(root: Path, department: str) -> str | None:
    """docker-compose.yml with a worker service for ``department``, or None if there is none."""
    path = root / "docker-compose.yml"
    if not path.is_file():
        return None
    text, before = _read_compose(path)
    service = f"worker-{conventions.distribution_name(department)}"
    if service in before["services"]:
        return None
    if "\nvolumes:\n" not in text:
        raise ScaffoldError(f"{path}: no top-level 'volumes:' to add {service} before")
    # A file from before the shared build-args (an older clone) gets the worker without them.
    shared = "        <<: *build-args\n" if _BUILD_ARGS_ANCHOR.search(text) else ""
    block = (
        f"  {service}:\n    <<: *worker\n    image: {compose_worker_image(department)}\n"
        f"    build:\n      context: .\n      args:\n{shared}"
        f"        DEPARTMENT: {department}\n"
    )
    edited = text.replace("\nvolumes:\n", f"\n{block}\nvolumes:\n", 1)
    if not _adds_only(before, edited, service, department):
        raise ScaffoldError(f"{path}: could not add the {service} service; add it by hand")
    return edited


def _adds_only(before: dict, edited: str, service: str, department: str) -> bool:
    """Whether ``edited`` is ``before`` plus exactly that worker service: a hand-edited
    file could have put the block under another key, or made it invalid."""
    try:
        after = yaml.safe_load(edited)
    except yaml.YAMLError:
        return False
    services = after.get("services") if isinstance(after, dict) else None
    added = services.pop(service, None) if isinstance(services, dict) else None
    if not isinstance(added, dict) or not isinstance(added.get("build"), dict):
        return False
    args = added["build"].get("args")
    return (
        isinstance(args, dict)
        and args.get("DEPARTMENT") == department
        and added.get("image") == compose_worker_image(department)
        and after == before
    )


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
    text, before = _read_compose(path)
    service = f"worker-{conventions.distribution_name(department)}"
    if service not in before["services"]:
        return None
    # The service's block: its key line, then indented (or blank) lines up to the next key.
    block = re.compile(
        rf"^  {re.escape(service)}:\n(?:(?:    .*)?\n)*?(?=  \S|\S|\Z)", re.MULTILINE
    )
    edited, count = block.subn("", text, count=1)
    # A hand-edited block (another indent, a quoted key, a comment at column 0) may not
    # match, or end the match early and leave its keys under another service: the edit
    # stands only if exactly that service went, else the worker would outlive its package.
    before["services"].pop(service)
    if not count or _parsed(edited) != before:
        raise ScaffoldError(f"{path}: the {service} service is not as add_department wrote it;"
                            " remove it by hand")  # fmt: skip
    return edited


def _parsed(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None
