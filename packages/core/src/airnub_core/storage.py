"""Where outputs go, and writing them so a crash never leaves half a file.

The data root is, first match wins: ``AIRNUB_DATA_ROOT``; the ``airnub-data-root``
storage block on the configured Prefect API (``airnub blocks sync`` creates it); else
``data/`` at the repository root (git-ignored). Outputs are laid out as
``<department>/<stage>/<category>/...``. A root is a local path, a ``file://`` URL, or an
object-storage URL (``s3://bucket/prefix``: see :mod:`airnub_core.object_storage`); any
other URL is refused (:class:`UnsupportedDataRoot`), never made a local folder. Every
writer, reader and check below takes a local :class:`~pathlib.Path` or a remote
:class:`upath.UPath` alike (:data:`DataPath`); the confinement rules that follow are the
local filesystem's, since object storage has no symlinks and no folders.

Outputs cannot escape the data root. The root itself is resolved first, so it may be a
symlink (``AIRNUB_DATA_ROOT=/mnt/link`` is fine). Below it, :func:`output_dir`, the
writers and :func:`open_output` / :func:`remove_output` walk the path one folder at a
time without following symlinks (``O_NOFOLLOW`` on each component, so what is checked is
what is opened): a symlink that resolves outside the root, or a ``..``, is refused with
:class:`UnsafeOutputPath` naming the path and the link; a symlink that stays inside is
followed. A symlink at a file's own name is never written through, replaced or removed.
A writer given a path outside the data root writes there, as the caller chose, with the
same care for the file's own name.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import IO, Any, TypeVar, cast
from urllib.parse import unquote, urlparse

from upath import UPath

from airnub_core import object_storage
from airnub_core.object_storage import UnsupportedDataRoot, is_remote

# Where an output lives: a local path, or a path in object storage.
DataPath = Path | UPath
PathT = TypeVar("PathT", bound=DataPath)  # a writer returns the kind of path it was given

__all__ = ["DataPath", "UnsupportedDataRoot", "is_remote"]

DATA_ROOT_ENV = "AIRNUB_DATA_ROOT"
DATA_ROOT_BLOCK = "airnub-data-root"
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_LINK_HOPS = 40  # as the kernel's own limit on symlinks in one path


class UnsafeOutputPath(ValueError):
    """An output path that would leave the data root (through a symlink or ``..``), or
    whose file name is a symlink; the message names the path and the link."""


def repository_root(start: Path | None = None) -> Path | None:
    """The nearest folder above ``start`` holding a ``uv.lock`` (the workspace root)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").is_file():
            return folder
    return None


def local_path_of(value: str, origin: str = DATA_ROOT_ENV) -> str:
    """A local path or ``file://`` URL as an absolute path; any other URL is refused,
    naming ``origin`` (``s3://b/r`` would otherwise become a folder ``./s3:/b/r``)."""
    scheme = urlparse(value).scheme
    if object_storage.is_remote_url(value):
        raise UnsupportedDataRoot(f"{origin}: {scheme}:// is not a local path")
    path = Path(unquote(urlparse(value).path) if scheme.lower() == "file" else value)
    return str(path.expanduser().resolve())


def root_of(
    value: str, origin: str, api_url: str | None, settings: dict[str, Any] | None = None
) -> DataPath:
    """The data root that ``value`` (a path or URL, from ``origin``) names. An S3 root's
    credentials come from the ``aws-credentials`` block of the data root's name on
    ``api_url``, if given and there is one, else from the environment."""
    if not object_storage.is_remote_url(value):
        return Path(local_path_of(value, origin))
    uses_aws = object_storage.uses_aws(value)
    credentials = _credentials(api_url) if uses_aws and api_url else None
    return object_storage.remote_root(value, origin, settings, credentials)


def data_root(*, use_block: bool | None = None) -> DataPath:
    """The data root. The storage block is looked up inside flow and task runs, where
    the API is known to be up, or when ``use_block`` says the caller knows it is."""
    if use_block is None:
        use_block = _in_a_run()
    api_url = _api_url() if use_block else None
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return root_of(configured, DATA_ROOT_ENV, api_url)
    from_block = _block_root(api_url)
    if from_block is not None:
        return from_block
    return (repository_root() or Path.cwd()) / "data"


def _in_a_run() -> bool:
    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@cache
def _block_root(api_url: str | None) -> DataPath | None:
    """The storage block's basepath on this API, looked up once per process and API."""
    if not api_url:
        return None
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    origin = f"the {DATA_ROOT_BLOCK} block on {api_url}"
    try:
        # Prefect types load() as "the block or a coroutine"; from sync code it is the block.
        block = cast(LocalFileSystem, LocalFileSystem.load(DATA_ROOT_BLOCK))
    except ValueError:  # no local one: a remote one (blocks sync --data-root s3://...)?
        try:
            remote = cast(RemoteFileSystem, RemoteFileSystem.load(DATA_ROOT_BLOCK))
        except ValueError:  # no such block on this API: the default applies
            return None
        return root_of(remote.basepath, origin, api_url, dict(remote.settings or {}))
    if block.basepath is None:  # a block naming no folder: the default applies too
        return None
    return Path(local_path_of(block.basepath, origin))


@cache
def _credentials(api_url: str) -> dict[str, Any] | None:
    """The data root's credentials block on this API, looked up once per process and API."""
    return object_storage.credentials_from_api(DATA_ROOT_BLOCK)


def output_dir(*parts: str) -> DataPath:
    """``data_root()/<department>/<stage>/<category>``, created on demand, confined to
    the data root (object storage needs no folders: only the parts are checked)."""
    root = data_root()
    if is_remote(root):
        return root.joinpath(*_plain_parts(root, parts))
    folder = root.joinpath(*parts)
    with _open_folder(folder, create=True, inside_root=True):
        return folder


def _plain_parts(root: UPath, parts: tuple[str, ...]) -> list[str]:
    """``parts`` split on slashes, refused if one is empty, ``.`` or ``..``."""
    names = [name for part in parts for name in part.split("/")]
    if any(name in ("", ".", "..") for name in names):
        raise UnsafeOutputPath(f"{'/'.join(parts)}: refused, not a plain path below {root}")
    return names


def _check_remote_name(path: UPath) -> None:
    if path.name in ("", ".", "..") or ".." in path.parts:
        raise UnsafeOutputPath(f"{path}: refused, not a plain object name")


def _parts_below(path: Path, root: Path) -> list[str] | None:
    """The parts of ``path`` below ``root``, compared as written (``..`` stays visible)."""
    count = len(root.parts)
    return list(path.parts[count:]) if path.parts[:count] == root.parts else None


def _below_data_root(path: Path) -> tuple[Path, list[str]] | None:
    """The resolved data root and the parts of ``path`` below it, if ``path`` is in it
    (written from the root as configured or as resolved)."""
    root = data_root()
    if is_remote(root):  # a local path is never below a remote root
        return None
    resolved = root.resolve()
    absolute = path if path.is_absolute() else Path.cwd() / path
    for candidate in (resolved, root):
        parts = _parts_below(absolute, candidate)
        if parts is not None:
            return resolved, parts
    return None


@contextmanager
def _open_folder(
    folder: Path, *, create: bool, inside_root: bool = False, for_file: Path | None = None
) -> Iterator[int]:
    """A descriptor of ``folder``, confined when it lies in the data root; missing folders
    are created when ``create`` says so, else ``FileNotFoundError``. Errors name
    ``for_file``, the file the caller means to reach, if given."""
    below = _below_data_root(folder)
    if below is not None:
        fd = _open_confined(for_file or folder, *below, create=create)
    elif inside_root:
        raise UnsafeOutputPath(f"{folder}: refused, it is outside the data root {data_root()}")
    else:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, _FOLDER_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_confined(path: Path, root: Path, parts: list[str], *, create: bool) -> int:
    """Open ``root/parts``; a symlink met on the way restarts the walk at its target,
    if that is inside ``root``."""
    if ".." in parts:
        raise UnsafeOutputPath(f"{path}: refused, '..' would climb out of the data root {root}")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    for _ in range(_MAX_LINK_HOPS):
        opened = _walk(path, root, parts, create=create)
        if isinstance(opened, int):
            return opened
        parts = opened
    raise UnsafeOutputPath(f"{path}: refused, too many symlinks below the data root {root}")


def _walk(path: Path, root: Path, parts: list[str], *, create: bool) -> int | list[str]:
    """Open ``root/parts`` one folder at a time, never following a symlink: the folder's
    descriptor, or at a symlink that stays inside ``root``, the parts to walk instead."""
    fd = os.open(root, _FOLDER_FLAGS)
    for depth, name in enumerate(parts):
        here = root.joinpath(*parts[: depth + 1])
        try:
            child = _open_child(fd, name, here, create=create)
        finally:
            os.close(fd)
        if child is None:
            target = Path(os.path.realpath(here))
            rest = _parts_below(target, root)
            if rest is None:
                link = "it" if here == path else str(here)
                raise UnsafeOutputPath(f"{path}: refused, {link} is a symlink to {target},"
                                       f" outside the data root {root}")  # fmt: skip
            return rest + parts[depth + 1 :]
        fd = child
    return fd


def _open_child(fd: int, name: str, shown: Path, *, create: bool) -> int | None:
    """The sub-folder ``name`` of ``fd`` (made if missing and ``create``), or None if it
    is a symlink."""
    for _ in range(2):
        try:
            return os.open(name, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no such folder", str(shown)) from None
            with suppress(FileExistsError):  # another writer made it meanwhile
                os.mkdir(name, dir_fd=fd)
        except NotADirectoryError:  # O_NOFOLLOW on a symlink fails this way too
            if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return None
            raise NotADirectoryError(errno.ENOTDIR, "a file where a folder should be",
                                     str(shown)) from None  # fmt: skip
    raise FileNotFoundError(errno.ENOENT, "folder vanished as it was made", str(shown))


def _check_file_name(path: Path, folder: int) -> None:
    """Refuse a file name that is a symlink or a folder (or not a file name at all)."""
    if path.name in ("", ".", ".."):
        raise UnsafeOutputPath(f"{path}: refused, not a file name")
    try:
        info = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path.name, dir_fd=folder)
        raise UnsafeOutputPath(f"{path}: refused, it is a symlink (to {target}); an output"
                               " is never written through a symlink")  # fmt: skip
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "a folder where a file should be", str(path))


@contextmanager
def open_output(path: DataPath) -> Iterator[IO[bytes]]:
    """Read an output file, confined like the writers: a symlink or anything but a regular
    file at ``path`` is refused, a missing file raises ``FileNotFoundError``."""
    if is_remote(path):
        _check_remote_name(path)
        with object_storage.open_object(path) as handle:
            yield handle
        return
    with _open_folder(path.parent, create=False, for_file=path) as folder:
        _check_file_name(path, folder)
        # O_NONBLOCK: a FIFO planted at the name must not hang the reader in open().
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(path.name, flags, dir_fd=folder)
    handle = os.fdopen(fd, "rb")
    with handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeOutputPath(f"{path}: refused, it is not a regular file")
        os.set_blocking(fd, True)
        yield handle


def remove_output(path: DataPath) -> bool:
    """Remove the regular file at ``path``, confined like the writers; never a symlink
    (nor what it points to) or a folder. Whether a file was removed."""
    if is_remote(path):
        _check_remote_name(path)
        if not object_storage.ask(path, "isfile"):
            return False
        object_storage.ask(path, "rm_file")
        return True
    try:
        with _open_folder(path.parent, create=False, for_file=path) as folder:
            info = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                return False
            os.unlink(path.name, dir_fd=folder)
    except FileNotFoundError:
        return False
    return True


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads write too)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass  # not Linux: fall back to setting it and putting it back
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def plain_write_mode(path: Path, *, dir_fd: int | None = None) -> int:
    """The mode a plain write of ``path`` (relative to ``dir_fd`` if given) would leave:
    the existing file's, or the umask's default for a new one (``mkstemp`` alone would
    make every file 0600)."""
    try:
        return stat.S_IMODE(os.stat(path, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def write_bytes_atomic(path: PathT, content: bytes) -> PathT:
    """Write to a temporary file beside ``path``, then rename it into place, all inside
    the one folder descriptor that was checked (see the module's note on the data root).
    In object storage, one PUT: the object appears whole or not at all."""
    if is_remote(path):
        _check_remote_name(path)
        object_storage.ask(path, "pipe_file", content)
        return path
    with _open_folder(path.parent, create=True, for_file=path) as folder:
        _check_file_name(path, folder)
        # cut so that a name near the filesystem's 255-byte limit still has room
        temp = f".{path.name[:100]}.{secrets.token_hex(4)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o600, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                os.fchmod(handle.fileno(), plain_write_mode(Path(path.name), dir_fd=folder))
            os.replace(temp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=folder)
            raise
    return path


def write_text_atomic(path: PathT, text: str) -> PathT:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: PathT, data: Any) -> PathT:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_csv_atomic(path: PathT, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> PathT:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())


def read_csv(path: DataPath) -> list[dict[str, str]]:
    with open_output(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        return list(csv.DictReader(text))


def located(path: DataPath | str) -> DataPath:
    """A path, or a path's text as a task's result carries it (``s3://...`` or local),
    on the data root's filesystem with its options."""
    if not isinstance(path, str):
        return path
    if object_storage.is_remote_url(path):
        root = data_root()
        prefix = f"{root}/"
        if not (is_remote(root) and path.startswith(prefix)):
            raise UnsafeOutputPath(f"{path}: refused, not below the data root {root}")
        return root.joinpath(*_plain_parts(root, (path.removeprefix(prefix),)))
    return Path(path)


def output_digest(path: DataPath) -> tuple[int, str] | None:
    """The size and sha256 of the regular file at ``path``, or None if there is none."""
    try:
        with open_output(path) as handle:
            digest = hashlib.sha256()
            size = 0
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except (FileNotFoundError, IsADirectoryError, UnsafeOutputPath):  # or a link in its place
        return None
    return size, digest.hexdigest()


def holds_content(path: DataPath) -> bool:
    """Whether ``path`` is a file, or a folder (a prefix, in object storage) holding
    something."""
    if is_remote(path):
        if object_storage.ask(path, "isfile"):
            return True
        return bool(object_storage.ask(path, "find", maxdepth=1, withdirs=True))
    if path.is_dir():
        with os.scandir(path) as entries:  # the first entry will do
            return next(entries, None) is not None
    return path.is_file()


def folder_stats(paths: Iterable[DataPath | str]) -> dict[str, int]:
    """Count the files among ``paths`` (paths, or their text as task results carry it)
    and their total size."""
    sizes = [size for size in map(_file_size, map(located, paths)) if size is not None]
    return {"files": len(sizes), "bytes": sum(sizes)}


def _file_size(path: DataPath) -> int | None:
    """The size of the file at ``path``, or None if there is none (an object's listing is
    asked under the operation deadline)."""
    if is_remote(path):
        info = object_storage.object_info(path)
        return None if info is None else int(info.get("size") or 0)
    return path.stat().st_size if path.is_file() else None
