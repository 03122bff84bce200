"""A department's ``prefect.yaml``, generated from the conventions.

Why generated, and not a file holding only overrides: Prefect's own ``prefect deploy``
must keep working on it, and Prefect reads each deployment's name and entrypoint from
the file; a file of overrides alone would deploy nothing. So the file holds every
deployment in full, and :func:`render` writes it: the keys the conventions derive
(``name``, ``prefect-version``, and each deployment's name, entrypoint, description,
tags and work pool name) are rewritten on every run, and the keys that cannot be derived
are the user's, kept as written, matched to their deployment by its entrypoint's
module (``pull``; each deployment's ``schedules``, ``parameters``,
``work_pool.job_variables`` and ``work_pool.work_queue_name``; the extra deployments of
single category flows). ``airnub check`` fails while the file differs from what
:func:`render` makes of it, and a snapshot test pins the text a new department gets.

The output is canonical: the same input gives the same bytes, and rendering a rendered
file changes nothing. Comments are the generator's own; those a user adds are not kept.
The existing file is read defensively: at most :data:`MAX_BYTES`, UTF-8, no aliases,
nesting at most :data:`MAX_DEPTH` deep. Anything it cannot keep faithfully (an unknown
key, a misplaced entrypoint, a value of the wrong type) is a :class:`PrefectYamlError`
naming the field, and nothing is written.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any

import yaml
from airnub_core.config import DEFAULT_ENV, ENV_VAR, ConfigError, package_dir
from airnub_core.conventions import (
    MANAGED_TAG,
    STAGES,
    ConventionError,
    Identity,
    check_category,
    check_department,
    check_identifier,
    distribution_name,
    flow_suffix,
    identify,
    work_pool_name,
)
from airnub_core.storage import UnsafeOutputPath, write_text_atomic
from packaging.requirements import InvalidRequirement, Requirement

FILE_NAME = "prefect.yaml"
MAX_BYTES = 256 * 1024  # a department with a hundred category deployments needs a tenth
MAX_DEPTH = 32  # the file's own structure is six deep; the rest is room for parameters
# The keys `airnub deploy` reads exactly as `prefect deploy` does. Any other key would
# make the two commands write different deployments, so it is refused.
TOP_LEVEL_KEYS = frozenset({"name", "prefect-version", "pull", "build", "push", "deployments"})
DEPLOYMENT_KEYS = frozenset(
    {"name", "entrypoint", "description", "tags", "work_pool", "schedules", "parameters"}
)
WORK_POOL_KEYS = frozenset({"name", "job_variables", "work_queue_name"})
# The user's keys, each with the type Prefect needs, in the order they are written.
USER_POOL_KEYS: dict[str, type] = {"work_queue_name": str, "job_variables": dict}
USER_KEYS: dict[str, type] = {"parameters": dict, "schedules": list}
# What a deployment new to the file (one without a work_pool) gets: the environment its
# runs' config overlays come from; the ingestion orchestrator, when the file does not
# list it, also a daily schedule, switched off.
DEFAULT_JOB_VARIABLES = {"env": {ENV_VAR: DEFAULT_ENV}}
EXAMPLE_SCHEDULE = {"cron": "0 6 * * *", "timezone": "UTC", "slug": "daily", "active": False}
_WIDTH = 1 << 16  # never fold a long value over several lines
_FIX = "run `airnub deployments write {department}`"

HEADER = """\
# Deployments of {department}, generated from the conventions by
#   airnub deployments write {department}
# `airnub check` fails while this file differs from what that command writes. `airnub
# deploy` writes the same deployments as `prefect --no-prompt deploy --all` run here.
# Derived, rewritten on every write: name, prefect-version, and each deployment's name,
# entrypoint, description, tags and work_pool.name.
# Yours, kept as written (matched by entrypoint): pull, and each deployment's schedules,
# parameters, work_pool.job_variables and work_pool.work_queue_name. To deploy a single
# category too, add an entry holding only its flow's entrypoint, e.g.
#   {department}.<stage>.<category>.<action>{suffix}:<flow>
# and write again. Comments are the generator's: any other comment is not kept.
"""
PULL_COMMENT = """\
# Pull steps (yours): none needed, as entrypoints are module paths, so a worker runs them
# wherever the package is installed. Without this key `prefect deploy` would pin this
# checkout's absolute path as every run's working directory.
"""
CATEGORY_COMMENT = """\
  # Single categories, deployed on their own for granular runs. The stage orchestrators
  # above stay the primary units.
"""
# The defaults as written for a new deployment, their comments included.
DEFAULT_JOB_VARIABLES_TEXT = f"""\
job_variables:
  env:
    {ENV_VAR}: {DEFAULT_ENV}  # which <name>.<env>.yaml config overlays the runs use
"""
EXAMPLE_SCHEDULE_TEXT = """\
schedules:
  - cron: "0 6 * * *"
    timezone: UTC
    slug: daily  # so a redeploy updates this schedule in place instead of replacing it
    active: false  # an example schedule, off until the department switches it on
"""


class PrefectYamlError(ConfigError):
    """A ``prefect.yaml`` that cannot be generated from: one line naming the file and,
    where there is one, the field (``message`` starts with it)."""

    def __init__(self, problem: str, *, field: str = "", file: str = FILE_NAME) -> None:
        self.problem = problem
        self.field = field
        self.message = f"{field}: {problem}" if field else problem  # without the file
        super().__init__(f"{file}: {self.message}")

    def at(self, path: Path | str) -> PrefectYamlError:
        """The same error, naming ``path`` instead."""
        return PrefectYamlError(self.problem, field=self.field, file=str(path))


@dataclass(frozen=True)
class _Deployment:
    """One entry: whose flow it deploys, and the keys that are the user's."""

    identity: Identity
    entrypoint: str
    pool: dict[str, Any]  # work_pool.work_queue_name, work_pool.job_variables
    own: dict[str, Any]  # parameters, schedules


# -- reading --------------------------------------------------------------------------


def location(department: str) -> Path:
    """``packages/dept_x/prefect.yaml``, beside the installed package's pyproject.toml."""
    try:
        check_department(department)
    except ConventionError as error:
        raise PrefectYamlError(str(error), file=department) from None
    try:
        return package_dir(department).parent.parent / FILE_NAME
    except Exception as error:  # the department's own code, reported in one line
        raise PrefectYamlError(
            f"does not import ({_shown(error)}); is it installed (`uv sync --all-packages`)?",
            file=department,
        ) from None


def read(path: Path) -> str:
    """The file's text; too large, not UTF-8 or not a regular file is a PrefectYamlError."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise PrefectYamlError(f"cannot be read: {error.strerror}", file=str(path)) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PrefectYamlError("not a regular file", file=str(path))
        data = handle.read(MAX_BYTES + 1)
    try:
        return decode(data)
    except PrefectYamlError as error:
        raise error.at(path) from None


def decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise PrefectYamlError(_too_large())
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start : error.start + 1].hex()
        raise PrefectYamlError(f"not UTF-8 text (byte 0x{byte} at offset {error.start})") from None


def load(text: str) -> dict[str, Any]:
    """The file's top-level mapping, read safely; a deployments list if it has one."""
    data = parse(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PrefectYamlError(f"must be a mapping with a deployments list, not {_kind(data)}")
    deployments = data.get("deployments")
    if deployments is not None and not isinstance(deployments, list):
        raise PrefectYamlError(
            f"must be a list of deployments, not {_kind(deployments)}", field="deployments"
        )
    return data


def parse(text: str) -> Any:
    """A YAML document read defensively (at most MAX_BYTES, no aliases, bounded depth),
    for any file of the platform's own; a PrefectYamlError without a file name."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PrefectYamlError(_too_large())
    _refuse_aliases_and_depth(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _invalid(error) from None
    except ValueError as error:  # a date like 2001-02-30
        raise PrefectYamlError(f"invalid YAML: {_shown(error)}") from None


def _refuse_aliases_and_depth(text: str) -> None:
    """Aliases could make a small file stand for a huge or self-containing one, and deep
    nesting exhausts the recursive reader: both are refused before anything is built."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise PrefectYamlError(
                    f"line {line}: an alias (*{_name(event.anchor)}); write the value out in full"
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise PrefectYamlError(f"line {line}: nested more than {MAX_DEPTH} deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as error:
        raise _invalid(error) from None


def _invalid(error: yaml.YAMLError) -> PrefectYamlError:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
    return PrefectYamlError(f"invalid YAML{where}: {_name(problem, 120)}")


# -- the user's part of the file ------------------------------------------------------


def _pull(data: dict[str, Any]) -> list[Any]:
    _refuse_unknown(data, TOP_LEVEL_KEYS, "")
    for key in ("build", "push"):
        if data.get(key):
            raise PrefectYamlError("must be empty; nothing is built or pushed", field=key)
    pull = data.get("pull")
    if pull is None:
        return []
    if not isinstance(pull, list):
        raise PrefectYamlError("must be a list of steps, e.g. pull: []", field="pull")
    return pull


def _deployments(department: str, data: dict[str, Any]) -> dict[str, _Deployment]:
    """The file's deployments by their flow's module, in file order."""
    found: dict[str, _Deployment] = {}
    where_of: dict[str, str] = {}
    for index, entry in enumerate(data.get("deployments") or []):
        where = f"deployments[{index}]"
        deployment = _deployment(department, where, entry)
        module = deployment.entrypoint.partition(":")[0]
        if module in found:
            raise PrefectYamlError(
                f"deploys the flow {where_of[module]} deploys; a flow has one"
                " deployment, named by the conventions",
                field=f"{where}.entrypoint",
            )
        found[module] = deployment
        where_of[module] = where
    return found


def _deployment(department: str, where: str, entry: Any) -> _Deployment:
    if not isinstance(entry, dict):
        raise PrefectYamlError("must be a mapping", field=where)
    _refuse_unknown(entry, DEPLOYMENT_KEYS, f"{where}.")
    if "work_pool" not in entry:  # new to the file: every written entry has a work_pool
        entry = {**entry, "work_pool": {"job_variables": _default_job_variables()}}
    pool = entry.get("work_pool")
    if pool is None:
        pool = {}
    if not isinstance(pool, dict):
        raise PrefectYamlError(f"must be a mapping, not {_kind(pool)}", field=f"{where}.work_pool")
    _refuse_unknown(pool, WORK_POOL_KEYS, f"{where}.work_pool.")
    entrypoint = entry.get("entrypoint")
    identity = _identity(department, f"{where}.entrypoint", entrypoint)
    return _Deployment(
        identity,
        str(entrypoint),
        _user_keys(pool, USER_POOL_KEYS, f"{where}.work_pool"),
        _user_keys(entry, USER_KEYS, where),
    )


def _refuse_unknown(mapping: dict[Any, Any], known: frozenset[str], prefix: str) -> None:
    """A key this module would drop: refused, as `airnub check` flags it."""
    unknown = sorted((key for key in mapping if key not in known), key=str)
    if unknown:
        why = "not supported; `airnub deploy` would not write what `prefect deploy` does"
        raise PrefectYamlError(why, field=f"{prefix}{_name(unknown[0])}")


def _user_keys(entry: dict[str, Any], types: dict[str, type], where: str) -> dict[str, Any]:
    """The user's keys that hold something, each of the type Prefect needs."""
    kept = {}
    for key, kind in types.items():
        value = entry.get(key)
        if value is None or value == kind():  # empty is the same as absent, in both tools
            continue
        if not isinstance(value, kind):
            raise PrefectYamlError(
                f"must be a {_kind(kind())}, not {_kind(value)}", field=f"{where}.{key}"
            )
        kept[key] = value
    for number, schedule in enumerate(kept.get("schedules", [])):
        if not isinstance(schedule, dict):
            raise PrefectYamlError(
                f"must be a mapping, not {_kind(schedule)}", field=f"{where}.schedules[{number}]"
            )
    return kept


def _identity(department: str, where: str, entrypoint: Any) -> Identity:
    """The stage orchestrator or category flow ``entrypoint`` names, read from its
    module path alone (nothing is imported: ``airnub check`` imports it)."""
    shape = (
        f"must be '{department}.<stage>{flow_suffix(department)}:<flow>' or"
        f" '{department}.<stage>.<category>.<action>{flow_suffix(department)}:<flow>'"
    )
    if not isinstance(entrypoint, str):
        raise PrefectYamlError(f"missing or not text; it {shape}", field=where)
    module, _, attribute = entrypoint.partition(":")
    parts = module.split(".")
    if parts[0] != department:
        raise PrefectYamlError(
            f"{_shown(entrypoint)} is outside {department}; it {shape}", field=where
        )
    try:
        identity = identify(module)
        if identity.category is not None:
            check_category(identity.category)
        if identity.action is not None:
            check_identifier(identity.action, "the flow's action phrase")
    except ConventionError as error:
        raise PrefectYamlError(f"{_shown(entrypoint)}: {error}", field=where) from None
    stage_flow = len(parts) == 2 and identity.stage is not None
    category_flow = len(parts) == 4 and identity.action is not None and identity.task is None
    names = [*parts, attribute]
    if not (stage_flow or category_flow) or not all(n.isidentifier() for n in names):
        raise PrefectYamlError(f"{_shown(entrypoint)} {shape}", field=where)
    return identity


# -- writing --------------------------------------------------------------------------


def render(department: str, existing: str | None) -> str:
    """The whole ``prefect.yaml`` of ``department``: the derived keys from the
    conventions, the user's keys from ``existing`` (None or empty for a new file).

    Every stage orchestrator is deployed; so is each category flow ``existing`` lists.
    A deployment new to the file gets :data:`DEFAULT_JOB_VARIABLES`, and the ingestion
    orchestrator :data:`EXAMPLE_SCHEDULE`. Raises :class:`PrefectYamlError`.
    """
    try:
        check_department(department)
    except ConventionError as error:
        raise PrefectYamlError(str(error), file=department) from None
    data = load(existing or "")
    pull = _pull(data)
    listed = _deployments(department, data)
    deployments = [
        listed.pop(_stage_module(department, stage), None) or _new_stage(department, stage)
        for stage in STAGES
    ]
    order = {stage: number for number, stage in enumerate(STAGES)}
    deployments += sorted(
        listed.values(),
        key=lambda d: (order[str(d.identity.stage)], str(d.identity.category), d.entrypoint),
    )
    model = _model(department, pull, deployments)
    text = _text(department, model, deployments)
    _verify(text, model)
    return text


def difference(department: str, text: str) -> str | None:
    """None when ``text`` is what :func:`render` writes from it; else one line naming
    the first place it differs, ending with the command that fixes it."""
    wanted = render(department, text)
    if wanted == text:
        return None
    place = _first_difference(load(text), yaml.safe_load(wanted), "") or _first_line(text, wanted)
    return f"{place}; {_FIX.format(department=department)}"


def write(department: str) -> bool:
    """Rewrite the department's ``prefect.yaml`` (atomically) if it differs from what
    :func:`render` makes of it; True if it changed. Raises :class:`PrefectYamlError`."""
    path = location(department)
    existing = read(path) if os.path.lexists(path) else None
    try:
        text = render(department, existing)
    except PrefectYamlError as error:
        raise error.at(path) from None
    if text == existing:
        return False
    try:
        write_text_atomic(path, text)
    except (OSError, UnsafeOutputPath) as error:
        reason = (error.strerror if isinstance(error, OSError) else None) or _shown(error)
        raise PrefectYamlError(f"cannot be written: {reason}", file=str(path)) from None
    return True


def _stage_module(department: str, stage: str) -> str:
    return f"{department}.{stage}{flow_suffix(department)}"


def _new_stage(department: str, stage: str) -> _Deployment:
    """A stage orchestrator the file does not list yet, with the defaults."""
    own = {"schedules": [dict(EXAMPLE_SCHEDULE)]} if stage == STAGES[0] else {}
    # {stage}_flow: the function the department template defines
    entrypoint = f"{_stage_module(department, stage)}:{stage}_flow"
    pool = {"job_variables": _default_job_variables()}
    return _Deployment(Identity(department, stage), entrypoint, pool, own)


def _default_job_variables() -> dict[str, Any]:
    return {key: dict(value) for key, value in DEFAULT_JOB_VARIABLES.items()}


def _description(identity: Identity) -> str:
    stage = f"the {identity.stage} stage of {identity.department}"
    if identity.category is None:
        return f"{stage[0].upper()}{stage[1:]}."
    return f"The {identity.category} category of {stage}."


def _model(department: str, pull: list[Any], deployments: list[_Deployment]) -> dict[str, Any]:
    """The file's content, in the order it is written."""
    return {
        "name": distribution_name(department),
        "prefect-version": _prefect_version(),
        "pull": pull,
        "deployments": [
            {
                "name": d.identity.deployment_name,
                "entrypoint": d.entrypoint,
                "description": _description(d.identity),
                "tags": [*d.identity.tags, MANAGED_TAG],
                "work_pool": {"name": work_pool_name(department), **d.pool},
                **d.own,
            }
            for d in deployments
        ],
    }


def _prefect_version() -> str:
    """The Prefect versions airnub-core admits, lower bounds first: ``>=3.9,<3.10``."""
    try:
        for line in requires("airnub-core") or []:
            requirement = Requirement(line)
            if requirement.name == "prefect" and requirement.marker is None:
                # lower bounds first, as people write a range
                specifiers = sorted(
                    requirement.specifier, key=lambda s: (s.operator[0] == "<", str(s))
                )
                return ",".join(str(s) for s in specifiers)
    except (PackageNotFoundError, InvalidRequirement):
        pass
    raise PrefectYamlError(
        "prefect-version: airnub-core's Prefect requirement is not"
        " installed; run `uv sync --all-packages`"
    )


def _text(department: str, model: dict[str, Any], deployments: list[_Deployment]) -> str:
    suffix = flow_suffix(department)
    lines = HEADER.format(department=department, suffix=suffix).splitlines()
    lines += [
        f"name: {_scalar(model['name'])}",
        f"prefect-version: {json.dumps(model['prefect-version'])}",
    ]
    lines += PULL_COMMENT.splitlines()
    lines += ["pull: []"] if not model["pull"] else _block("pull", model["pull"], 0)
    lines += ["", "deployments:"]
    first_category = next((i for i, d in enumerate(deployments) if d.identity.category), None)
    for index, entry in enumerate(model["deployments"]):
        if index == first_category:
            lines += CATEGORY_COMMENT.splitlines()
        lines += _entry_lines(entry)
    return "\n".join(lines) + "\n"


def _entry_lines(entry: dict[str, Any]) -> list[str]:
    pool = entry["work_pool"]
    lines = [
        f"  - name: {_scalar(entry['name'])}",
        f"    entrypoint: {_scalar(entry['entrypoint'])}",
        f"    description: {_scalar(entry['description'])}",
        f"    tags: {_scalar(entry['tags'])}",
        "    work_pool:",
        f"      name: {_scalar(pool['name'])}",
    ]
    for key in USER_POOL_KEYS:
        if key in pool:
            lines += _block(key, pool[key], 6)
    for key in USER_KEYS:
        if key in entry:
            lines += _block(key, entry[key], 4)
    return lines


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as the rest of the file is; every value in full."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML writes a NEL (U+0085) raw outside double quotes, where it reads back as a
    # line break; between double quotes it is escaped.
    style = '"' if "\x85" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def _block(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` as lines indented by ``indent``; the defaults with their comments."""
    text = _DEFAULTS_TEXT.get(_canonical({key: value}))
    if text is None:
        text = yaml.dump(
            {key: value},
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=_WIDTH,
        )
    # split at "\n" alone: a value may hold U+2028 and the like, which are not line ends here
    lines = text.removesuffix("\n").split("\n")
    return [" " * indent + line if line else line for line in lines]


def _scalar(value: Any) -> str:
    """A derived value on one line: plain where YAML allows, quoted where it does not."""
    text = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=True, allow_unicode=True, width=_WIDTH
    )
    return text.removesuffix("\n").removesuffix("\n...")


def _canonical(value: Any) -> str:
    """Equal for equal YAML values, order of keys and types included (``0`` is not
    ``false``), and for a NaN too."""
    return yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=True,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
    )


# A default value, as canonical text -> how it is written, with its comments.
_DEFAULTS_TEXT = {
    _canonical({"job_variables": DEFAULT_JOB_VARIABLES}): DEFAULT_JOB_VARIABLES_TEXT,
    _canonical({"schedules": [EXAMPLE_SCHEDULE]}): EXAMPLE_SCHEDULE_TEXT,
}


def _verify(text: str, model: dict[str, Any]) -> None:
    """The text must read back as the model it was written from, or nothing is written."""
    if _canonical(yaml.safe_load(text)) != _canonical(model):
        place = _first_difference(yaml.safe_load(text), model, "") or "the file"
        raise PrefectYamlError(
            f"{place}: the generated text does not read back as written; please report this"
        )


# -- comparing ------------------------------------------------------------------------


def _first_difference(have: Any, want: Any, where: str) -> str | None:
    """The first place, in the generated file's order, where ``have`` is not ``want``."""
    if isinstance(want, dict) and isinstance(have, dict):
        for key, value in want.items():
            place = f"{where}.{key}" if where else str(key)
            if key not in have:
                return f"{place}: missing"
            if found := _first_difference(have[key], value, place):
                return found
        extra = next((k for k in have if k not in want), None)
        return (
            None
            if extra is None
            else f"{where + '.' if where else ''}{extra}: not in the generated file"
        )
    if isinstance(want, list) and isinstance(have, list) and not _is_scalar_list(want):
        for index, value in enumerate(want):
            place = f"{where}[{index}]"
            if index >= len(have):
                return f"{place}: missing{_deploys(value)}"
            if found := _first_difference(have[index], value, place):
                return found
        return (
            None if len(have) == len(want) else f"{where}[{len(want)}]: not in the generated file"
        )
    if _canonical(have) == _canonical(want):
        return None
    return f"{where} is not the generated {_shown(want, 80)}"


def _is_scalar_list(value: list[Any]) -> bool:
    return all(not isinstance(item, dict | list) for item in value)


def _deploys(value: Any) -> str:
    name = value.get("name") if isinstance(value, dict) else None
    return f" (the generated file deploys {name!r} there)" if name else ""


def _first_line(have: str, want: str) -> str:
    """Same content, laid out differently: the first line that is not the generated one."""
    pairs = zip(have.splitlines(), want.splitlines(), strict=False)
    number = next((n for n, (a, b) in enumerate(pairs, 1) if a != b), None)
    if number is None:
        number = min(len(have.splitlines()), len(want.splitlines())) + 1
    return f"line {number} is not as generated (layout or comments)"


# -- helpers --------------------------------------------------------------------------


def _too_large() -> str:
    return f"larger than {MAX_BYTES // 1024} KiB; a department's deployments fit in far less"


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string"}.get(type(value), type(value).__name__)


def _name(value: Any, limit: int = 40) -> str:
    """A key or anchor as written, on one line and cut at ``limit``."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _shown(value: Any, limit: int = 60) -> str:
    """``repr`` for a string, ``str`` otherwise, on one line and cut at ``limit``."""
    text = repr(value) if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
