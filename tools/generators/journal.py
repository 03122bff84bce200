"""A generator run's journal: what it is about to do, written before it does it.

A generator killed outright (SIGKILL, a power cut) cannot undo its own work. So before
its first change it writes ``.airnub-generator-journal/`` at the workspace root, and
removes it last; the next generator, holding the workspace lock, reads it and undoes
the run (before its commit point) or finishes it (after)::

    journal.json   {"command": [...], "edits": [{"path", "backup", "mode"}], "uninstall": [...]}
    backup-<n>     the bytes of each file it edits, as they were (no backup: it was absent)
    log            one JSON array per line, appended and synced BEFORE each step:
                   ["park", folder]  ["move", path, parked as]  ["mkdir", folder]
                   ["create", file]  ["commit"]

Each undo step is idempotent, so a run killed while undoing is undone again. A last
log line cut short was never acted on (it is written before its step): it is ignored.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from airnub_core import conventions

NAME = ".airnub-generator-journal"
MANIFEST = "MANIFEST"  # in a parking folder: "<index>\t<original path>" per line
STEPS = {"park": 1, "move": 2, "mkdir": 1, "create": 1, "commit": 0}  # step -> its paths


class JournalError(Exception):
    """A journal that cannot be trusted: one line naming the file."""


@dataclass
class Journal:
    root: Path
    command: list[str]
    edits: list[dict] = field(default_factory=list)  # {"path", "backup" or None, "mode"}
    uninstall: list[str] = field(default_factory=list)
    steps: list[list[str]] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.root / NAME

    @property
    def shown_command(self) -> str:
        return shlex.join(self.command)

    @property
    def committed(self) -> bool:
        return ["commit"] in self.steps

    # --- writing ------------------------------------------------------------------------

    @classmethod
    def begin(cls, root: Path, command: list[str], edited: list[Path], uninstall: list[str]):
        """Back up ``edited`` and put the journal in place with one rename, so a journal
        is only ever seen whole; a half-written one is a ``.airnub-generator-journal.*``."""
        draft = root / f"{NAME}.new-{secrets.token_hex(4)}"
        draft.mkdir()
        journal = cls(root, list(command), uninstall=list(uninstall))
        for index, path in enumerate(edited):
            target = root / path
            entry = {"path": str(path), "backup": None, "mode": None}
            if target.exists():
                entry |= {"backup": f"backup-{index}", "mode": target.stat().st_mode & 0o777}
                _write_synced(draft / entry["backup"], target.read_bytes())
            journal.edits.append(entry)
        record = {"command": journal.command, "edits": journal.edits, "uninstall": uninstall}
        _write_synced(draft / "journal.json", json.dumps(record, indent=1).encode())
        _write_synced(draft / "log", b"")
        os.rename(draft, journal.folder)  # fails if one is there: never two journals
        _sync_folder(root)
        return journal

    def note(self, step: str, *paths: Path) -> None:
        """Record a step, durably, before it is taken."""
        entry = [step, *map(str, paths)]
        with open(self.folder / "log", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
        self.steps.append(entry)

    def commit(self) -> None:
        self.note("commit")

    def close(self) -> None:
        """Remove the journal: renamed aside first, so a half-deleted one is never read."""
        gone = self.root / f"{NAME}.done-{secrets.token_hex(4)}"
        os.rename(self.folder, gone)
        _sync_folder(self.root)
        shutil.rmtree(gone)

    # --- reading ------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path) -> Journal | None:
        """The journal a killed run left, or None. Leftover drafts and deleted journals
        (``.airnub-generator-journal.*``) recorded no change that was made: they go."""
        for leftover in root.glob(f"{NAME}.*"):
            shutil.rmtree(leftover)
        folder = root / NAME
        if not folder.exists():
            return None
        try:
            record = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
            uninstall = [_department_distribution(n) for n in _strings(record["uninstall"])]
            journal = cls(root, _strings(record["command"]), uninstall=uninstall)
            journal.edits = [_edit(root, folder, entry) for entry in record["edits"]]
        except (OSError, ValueError, KeyError, TypeError) as error:  # ConventionError too
            why = _why(error)
            raise JournalError(f"{NAME}/journal.json: unreadable ({why}); {_BY_HAND}") from None
        journal.steps = _read_log(root, folder / "log")
        return journal

    # --- undoing and finishing --------------------------------------------------------

    def undo(self) -> list[str]:
        """Take back every step, newest first, and restore the edited files. Returns what
        it did, for the report."""
        removed, put_back = [], []
        for step, *paths in reversed(self.steps):
            target = self.root / paths[0] if paths else self.root
            if step == "create" and (target.is_file() or target.is_symlink()):
                target.unlink()
                removed.append(paths[0])
            elif step == "mkdir" and target.is_dir():
                shutil.rmtree(target)
                removed.append(paths[0] + "/")
            elif step == "move" and self._lexists(paths[1]) and not self._lexists(paths[0]):
                os.rename(self.root / paths[1], target)
                put_back.append(paths[0] + ("/" if target.is_dir() else ""))
            elif step == "park" and target.is_dir():
                (target / MANIFEST).unlink(missing_ok=True)
                target.rmdir()  # empty again; fails loudly rather than delete what it holds
        restored = [entry["path"] for entry in self.edits if self._restore(entry)]
        shown = [p for p in removed if not p.endswith(".new") and not _inside(p, removed)]
        done = [f"removed {', '.join(reversed(shown))}"] if shown else []
        done += [f"put back {', '.join(reversed(put_back))}"] if put_back else []
        return done + ([f"restored {', '.join(restored)}"] if restored else [])

    def finish(self) -> list[str]:
        """Past the commit point: delete what was set aside and any stray temporary file."""
        deleted = []
        for step, *paths in self.steps:
            target = self.root / paths[0] if paths else self.root
            if step == "move" and self._lexists(paths[1]):
                deleted.append(paths[0])
            elif step == "create" and paths[0].endswith(".new"):
                target.unlink(missing_ok=True)
        for step, *paths in self.steps:
            if step == "park" and (self.root / paths[0]).exists():
                shutil.rmtree(self.root / paths[0])
        return [f"deleted {', '.join(deleted)} (set aside)"] if deleted else []

    def _restore(self, entry: dict) -> bool:
        """Put one edited file back as it was; True if it had changed."""
        target = self.root / entry["path"]
        if entry["backup"] is None:
            if not target.exists():
                return False
            target.unlink()
            return True
        content = (self.folder / entry["backup"]).read_bytes()
        if target.is_file() and target.read_bytes() == content:
            return False
        temp = target.parent / f".{target.name}.airnub-restore"
        temp.write_bytes(content)
        os.chmod(temp, entry["mode"])
        os.replace(temp, target)
        return True

    def _lexists(self, path: str) -> bool:
        return os.path.lexists(self.root / path)


_BY_HAND = "an interrupted generator left it: put back what it lists by hand, then delete it"


def _why(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r} field"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, not {value!r:.40}")
    return value


# Folders of the workspace no generator ever writes in.
OFF_LIMITS = frozenset({".git", ".venv"})


def _safe_path(root: Path, text: object) -> str:
    """A path the journal may act on: relative, inside the workspace, not the workspace,
    and reached through no symlink (a link could lead a restore or a removal outside)."""
    if not isinstance(text, str) or not text or "\0" in text:
        raise ValueError(f"{text!r:.60} is not a path")
    path = Path(text)
    if path.is_absolute() or ".." in path.parts or path == Path(".") or path.parts[0] in OFF_LIMITS:
        raise ValueError(f"{text!r:.60} is outside what a generator writes")
    for depth in range(1, len(path.parts) + 1):
        if (root / Path(*path.parts[:depth])).is_symlink():
            raise ValueError(f"{text!r:.60} goes through a symlink")
    return text


def _department_distribution(name: str) -> str:
    """Only a department is ever uninstalled by a journal."""
    conventions.check_department(name.replace("-", "_"))
    return name


def _edit(root: Path, folder: Path, entry: dict) -> dict:
    path = _safe_path(root, entry["path"])
    backup, mode = entry["backup"], entry["mode"]
    if backup is not None and not (folder / _safe_path(root, backup)).is_file():
        raise ValueError(f"its backup of {path} is missing")
    if backup is not None and not (isinstance(mode, int) and 0 <= mode <= 0o777):
        raise ValueError(f"no plain file mode for {path}")  # never setuid, setgid or sticky
    return {"path": path, "backup": backup, "mode": mode}


def _read_log(root: Path, log: Path) -> list[list[str]]:
    try:
        text = log.read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        raise JournalError(f"{NAME}/log: unreadable ({_why(error)}); {_BY_HAND}") from None
    lines = text.split("\n")
    if lines[-1]:  # cut short by the kill: written before its step, so never acted on
        lines.pop()
    steps = []
    for number, line in enumerate(filter(None, lines), start=1):
        try:
            step = json.loads(line)
            if not (isinstance(step, list) and step and STEPS.get(step[0]) == len(step) - 1):
                raise ValueError("not a step this version writes")
            steps.append([step[0], *(_safe_path(root, p) for p in step[1:])])
        except ValueError as error:
            raise JournalError(
                f"{NAME}/log: line {number} unreadable ({_why(error)}); {_BY_HAND}"
            ) from None
    return steps


def _inside(path: str, folders: list[str]) -> bool:
    return any(f != path and f.endswith("/") and path.startswith(f) for f in folders)


def _write_synced(path: Path, content: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
