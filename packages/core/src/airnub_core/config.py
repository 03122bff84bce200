"""Category settings: YAML files under ``configs/variables/`` validated by pydantic models.

A config file mirrors the flow tree: ``<dept package>/configs/variables/<stage>/<category>.yaml``.
Settings resolve from the first layer that has them (see ``LAYERS``), then
explicit flow parameters are merged on top. Relative paths in ``Source`` fields
resolve against the department package, so shipped sample data works from any
working directory and from an installed wheel.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlparse

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from airnub_core.conventions import Identity, identify
from airnub_core.secrets_scan import find_secrets, url_problem
from airnub_core.sources import DEFAULT_DEADLINE, CrossOrigin

M = TypeVar("M", bound=BaseModel)
CONFIG_DIR = ("configs", "variables")
ENV_VAR = "AIRNUB_ENV"
DEFAULT_ENV = "local"


class ConfigError(ValueError):
    """An invalid config; the message names the file (or Variable) and the key."""


def _resolve_source(value: str, info: ValidationInfo) -> str:
    scheme = urlparse(value).scheme
    if scheme and len(scheme) > 1:
        if problem := url_problem(value):  # the message never holds the value
            raise ValueError(f"{problem}; name a Secret block for the credentials instead")
        return value
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path.resolve().as_uri()


# A URL or a path; relative paths resolve against the department package.
Source = Annotated[str, AfterValidator(_resolve_source)]


class Settings(BaseModel):
    """Base class for category settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class FetchSettings(Settings):
    """How a category reads its sources: a base for the settings of any category that fetches."""

    timeout_seconds: float = Field(default=10.0, gt=0)  # per wait: connecting, or one read
    # The whole of one request, redirects and body included: a server that drips bytes
    # cannot hold it open (see airnub_core.sources.Limits).
    deadline_seconds: float = Field(default=DEFAULT_DEADLINE, gt=0)
    # quick retries of transient failures, before Prefect's
    retries: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0)
    # A Prefect Secret block holding a bearer token for the sources; never the token itself.
    api_key_block: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments for the fetching tasks in :mod:`airnub_core.tasks`."""
        return {
            "timeout": self.timeout_seconds,
            "retries": self.retries,
            "backoff": self.backoff_seconds,
            "auth_block": self.api_key_block,
            "deadline": self.deadline_seconds,
        }


class PagedJsonSettings(FetchSettings):
    """A paginated JSON API: where it starts, where the records are, how pages link."""

    url: Source
    records_key: str = "results"
    next_key: str = "next"
    # A page linking to another origin: refused, or followed without the credentials.
    cross_origin_pages: CrossOrigin = "refuse"

    def reader_options(self) -> dict[str, Any]:
        return {**super().reader_options(), "cross_origin": self.cross_origin_pages}


def package_dir(department: str) -> Path:
    module = importlib.import_module(department)
    return Path(module.__file__ or "").parent


def config_path(identity: Identity) -> Path:
    """The YAML file for a stage, category or task node of the tree."""
    parts = list(identity.config_parts[1:])
    if not parts:
        raise ConfigError(f"{identity.department}: a config file needs a stage")
    *folders, leaf = parts
    return package_dir(identity.department).joinpath(*CONFIG_DIR, *folders, f"{leaf}.yaml")


def read_yaml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file():  # reading a FIFO would wait for ever
        raise ConfigError(f"{path}: not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as error:  # a PR's file in another encoding, or binary
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None
    except (ValueError, RecursionError) as error:  # a date like 2001-02-30; nesting too deep
        raise ConfigError(f"{path}: invalid YAML: {type(error).__name__}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, not {type(data).__name__}")
    return data


def current_env() -> str:
    """The environment whose overlays apply: ``AIRNUB_ENV``, else ``local``; it must be
    declared in the workspace (see :mod:`airnub_core.environments`)."""
    # imported here: environments builds on this module
    from airnub_core.environments import check_environment
    from airnub_core.storage import repository_root

    return check_environment(os.environ.get(ENV_VAR) or DEFAULT_ENV, ENV_VAR, repository_root())


def overlay_path(base: Path, env: str) -> Path:
    """``public_api_data.yaml`` -> ``public_api_data.<env>.yaml`` beside it."""
    from airnub_core.environments import check_name

    return base.with_name(f"{base.stem}.{check_name(env, 'environment')}{base.suffix}")


def secret_keys(data: Any) -> Iterator[str]:
    """Dotted keys holding a secret (see :mod:`airnub_core.secrets_scan` for the rule)."""
    return (finding.key for finding in find_secrets(data))


def refuse_secrets(data: Any, origin: str) -> None:
    """Raise :class:`ConfigError` naming ``origin:key`` for the first secret in ``data``."""
    finding = next(find_secrets(data), None)
    if finding is None:
        return
    block_key = f"{finding.name}_block" if finding.name else "a *_block key"
    raise ConfigError(
        f"{origin}:{finding.key}: {finding.why}; store it in a Prefect Secret block and name"
        f" the block instead ({block_key}: <block-name>)"
    )


def load_yaml_config(path: Path, env: str) -> tuple[str, dict[str, Any]]:
    """A config file with its environment overlay deep-merged on top, refusing secrets
    and any overlay of an environment the workspace does not declare."""
    from airnub_core.environments import check_name, overlays

    data = read_yaml(path)
    refuse_secrets(data, str(path))
    origin = str(path)
    overlay = overlays(path).get(check_name(env, "environment"))
    if overlay is not None:
        top = read_yaml(overlay)
        refuse_secrets(top, str(overlay))
        data = deep_merge(data, top)
        origin = f"{origin} + {overlay.name}"
    return origin, data


def settings_model(module: Any) -> type[Settings]:
    """The one :class:`Settings` subclass a flow or task module declares."""
    models = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Settings)
        and value.__module__ == module.__name__
    ]
    if len(models) != 1:
        raise ConfigError(
            f"{module.__name__}: expected one settings model (a Settings subclass),"
            f" found {len(models)}"
        )
    return models[0]


def describe_errors(origin: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        problems.append(f"{origin}: {key}: {item['msg']}")
    return "; ".join(problems)


def validate(model: type[M], data: Mapping[str, Any], origin: str, department: str) -> M:
    try:
        return model.model_validate(data, context={"base_dir": package_dir(department)})
    except ValidationError as error:
        raise ConfigError(describe_errors(origin, error)) from None


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# A layer returns (where the settings came from, raw data) or None to pass.
Layer = Callable[[Identity], tuple[str, dict[str, Any]] | None]


# A stage reads its department's Variables once and hands them to its categories here,
# instead of each category asking the API on its own.
PREFETCHED: ContextVar[dict[str, Any] | None] = ContextVar("airnub_variables", default=None)


def variable_layer(identity: Identity) -> tuple[str, dict[str, Any]] | None:
    """The node's Prefect Variable, when running under Prefect and the API has one."""
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    name = identity.variable_name()
    prefetched = PREFETCHED.get()
    if prefetched is not None:
        value = prefetched.get(name)
    else:
        from prefect.variables import Variable

        value = Variable.get(name, default=None)
    if value is None:
        return None
    origin = f"Prefect Variable {name!r}"
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: expected a mapping of settings, not {type(value).__name__}")
    refuse_secrets(value, origin)  # one made by hand on the server, not by `variables sync`
    return origin, value


def yaml_layer(identity: Identity) -> tuple[str, dict[str, Any]]:
    return load_yaml_config(config_path(identity), current_env())


# First match wins: a Prefect Variable (from `airnub variables sync`), else the YAML.
LAYERS: list[Layer] = [variable_layer, yaml_layer]


def resolve_settings(
    model: type[M], module_name: str, overrides: Mapping[str, Any] | None = None
) -> tuple[M, str]:
    """Validated settings for the node ``module_name`` belongs to, and their origin."""
    identity = identify(module_name)
    for layer in LAYERS:
        found = layer(identity)
        if found is not None:
            origin, data = found
            break
    else:
        raise ConfigError(f"{identity.variable_name()}: no settings found")
    if overrides:
        refuse_secrets(overrides, "flow parameters")
        data = deep_merge(data, overrides)
        origin = f"{origin} + flow parameters"
    return validate(model, data, origin, identity.department), origin
