"""Work pools as code: the pool types ``airnub deploy`` makes, and their base job templates.

A department's ``work-pool.yaml`` (beside its ``prefect.yaml``) holds only what cannot be
derived for its Kubernetes pool: the namespace, the container's resources, the Secret
holding the Prefect API key and, if it is not the derived one, the service account. The
full base job template is rendered from ``work_pool_templates/kubernetes.json``, which is
prefect-kubernetes's own default template (so every variable it offers keeps working)
with two changes: the API key reaches the job from that Secret (``valueFrom.secretKeyRef``),
never as a value, and the worker's own key is kept out of the job's environment. A missing
file means every default. Docker pools start from prefect-docker's default template
(``work_pool_templates/docker.json``). Both templates are package data: the platform does
not depend on either worker package, and nothing is fetched from the network.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from airnub_core.config import ENV_VAR, ConfigError
from airnub_core.conventions import distribution_name
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from airnub_platform import prefect_yaml

FILE_NAME = "work-pool.yaml"
PROCESS, DOCKER, KUBERNETES = "process", "docker", "kubernetes"
POOL_TYPES = (PROCESS, DOCKER, KUBERNETES)
IMAGE_POOL_TYPES = frozenset({DOCKER, KUBERNETES})  # their deployments pin an image
TEMPLATES = Path(__file__).resolve().parent / "work_pool_templates"
API_KEY = "PREFECT_API_KEY"

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
# Kubernetes also refuses the keys "." and ".." and any key starting with "..".
_SECRET_KEY = re.compile(r"(?!\.\.)(?!\.$)[-._a-zA-Z0-9]+")
# A Kubernetes quantity without a sign: 500m, 0.5, 1Gi, 128M, 1e3.
# The exponent has a group of its own: "E" alone is exa, "Ei" exbi, and "E3" an exponent.
_QUANTITY = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>[KMGTPE]i|[mkMGTPE])|[eE](?P<exponent>[-+]?[0-9]{1,2}))?"
)
_SUFFIX_SCALE = {
    **{s: Decimal(1024) ** (n + 1) for n, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (n + 1) for n, s in enumerate("kMGTPE")},
    "m": Decimal("0.001"),
    "": Decimal(1),
}


class WorkPoolError(ConfigError):
    """A ``work-pool.yaml`` that cannot be used: one line naming the file and the field."""


# -- the file's fields ----------------------------------------------------------------


def _name(pattern: re.Pattern[str], limit: int, what: str) -> Any:
    def check(value: str) -> str:
        if len(value) > limit or not pattern.fullmatch(value):
            raise ValueError(f"must be {what} (at most {limit} characters)")
        return value

    return AfterValidator(check)


def _quantity(value: Any) -> str:
    """``value`` as a Kubernetes quantity's text; a number written without quotes counts."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a Kubernetes quantity such as 500m or 1Gi, not {_kind(value)}")
    text = str(value)
    if len(text) > 32 or not _QUANTITY.fullmatch(text):
        raise ValueError(f"{_shown(text)} is not a Kubernetes quantity such as 500m, 2 or 1Gi")
    return text


def amount(quantity: str) -> Decimal:
    """The value a quantity stands for, to compare a request with its limit."""
    parts = _QUANTITY.fullmatch(quantity)
    assert parts is not None, quantity  # validated on the way in
    number = Decimal(parts["number"])
    if parts["exponent"] is not None:
        return number.scaleb(int(parts["exponent"]))
    return number * _SUFFIX_SCALE[parts["suffix"] or ""]


Quantity = Annotated[str, BeforeValidator(_quantity)]
DnsLabel = Annotated[str, _name(re.compile(_DNS_LABEL), 63, "a DNS label: a-z, 0-9 and -")]
DnsSubdomain = Annotated[str, _name(_DNS_SUBDOMAIN, 253, "a DNS subdomain name: a-z, 0-9, - and .")]
SecretKey = Annotated[
    str, _name(_SECRET_KEY, 253, "a Secret key: A-Z, a-z, 0-9, -, _ and ., not . or ..*")
]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Resources(_Settings):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ContainerResources(_Settings):
    requests: Resources = Resources(cpu="250m", memory="512Mi")
    limits: Resources = Resources(cpu="1", memory="1Gi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ContainerResources:
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if request is not None and limit is not None and amount(request) > amount(limit):
                raise ValueError(
                    f"requests.{name} {request} is more than limits.{name} {limit};"
                    " Kubernetes refuses such a pod"
                )
        return self


class ApiKeySecret(_Settings):
    """The Kubernetes Secret the job reads ``PREFECT_API_KEY`` from."""

    name: DnsSubdomain = "prefect-api-key"
    key: SecretKey = "key"
    optional: bool = False  # true: a pod starts without the Secret (a server without keys)


class Kubernetes(_Settings):
    namespace: DnsLabel = "prefect"
    # None: derived from the department, e.g. dept-project-alpha
    service_account_name: DnsSubdomain | None = None
    resources: ContainerResources = ContainerResources()
    api_key_secret: ApiKeySecret = ApiKeySecret()


class WorkPoolSettings(_Settings):
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)


def service_account(department: str, settings: WorkPoolSettings) -> str:
    """The job's service account: the file's, else the department's distribution name."""
    return settings.kubernetes.service_account_name or distribution_name(department)


# -- reading ----------------------------------------------------------------------------


def location(department: str) -> Path:
    """``packages/dept_x/work-pool.yaml``, beside the department's ``prefect.yaml``."""
    return prefect_yaml.location(department).with_name(FILE_NAME)


def read(department: str) -> WorkPoolSettings:
    """The department's settings; every default when it has no file."""
    path = location(department)
    if not os.path.lexists(path):
        return WorkPoolSettings()
    return load(path)


def load(path: Path) -> WorkPoolSettings:
    """The file at ``path``, read as defensively as ``prefect.yaml``; WorkPoolError says
    why it cannot be used, naming the file and the field."""
    if path.is_symlink():  # one to /etc/shadow would have its lines named as unknown keys
        raise WorkPoolError(f"{path}: a symbolic link; write the settings in the file itself")
    try:
        data = prefect_yaml.parse(prefect_yaml.read(path))
    except prefect_yaml.PrefectYamlError as error:
        raise WorkPoolError(str(error.at(path))) from None
    return settings_from(data, str(path))


def settings_from(data: Any, where: str) -> WorkPoolSettings:
    if data is None:
        return WorkPoolSettings()
    if not isinstance(data, dict):
        raise WorkPoolError(f"{where}: must be a mapping with a kubernetes key, not {_kind(data)}")
    try:
        return WorkPoolSettings.model_validate(data)
    except ValidationError as error:
        raise WorkPoolError(f"{where}: {_first_problem(error)}") from None


_EXPECTED = {"string": "text", "bool": "true or false", "model": "a mapping", "dict": "a mapping"}


def _first_problem(error: ValidationError) -> str:
    problem = error.errors(include_url=False, include_input=False)[0]
    loc = [_key(part) for part in problem["loc"] if part not in ("str", "int")]
    kind = problem["type"]
    if kind == "extra_forbidden":
        known = ", ".join(_fields_at(loc[:-1]))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,39}", loc[-1]):
            loc[-1] = "(a key)"  # not a setting's name: maybe a line of a secret
        message = f"not a known setting (known here: {known})"
    elif kind.endswith("_type"):
        expected = kind.removesuffix("_type").removesuffix("_attributes")
        message = f"must be {_EXPECTED.get(expected, expected)}"
    else:
        message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(loc)}: {message}" if loc else message


def _fields_at(loc: list[str]) -> list[str]:
    """The settings a mapping at ``loc`` may hold."""
    model: type[BaseModel] = WorkPoolSettings
    for part in loc:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return list(model.model_fields)


# -- base job templates -------------------------------------------------------------------


@cache
def _template(pool_type: str) -> str:
    return (TEMPLATES / f"{pool_type}.json").read_text(encoding="utf-8")


def default_template(pool_type: str) -> dict[str, Any]:
    """The worker's own default base job template, as kept in the package."""
    return json.loads(_template(pool_type))


def base_job_template(
    pool_type: str, department: str, env: str, settings: WorkPoolSettings | None = None
) -> dict[str, Any] | None:
    """The base job template a new pool of ``pool_type`` gets; None for a process pool
    (Prefect's own default)."""
    if pool_type == PROCESS:
        return None
    template = default_template(pool_type)
    variables = template["variables"]["properties"]
    # every run's config overlays, also for a run of a deployment that sets no env
    variables["env"]["default"] = {ENV_VAR: env}
    if pool_type == KUBERNETES:
        _kubernetes(template, department, settings or WorkPoolSettings())
    return template


def _kubernetes(template: dict[str, Any], department: str, settings: WorkPoolSettings) -> None:
    k8s = settings.kubernetes
    variables = template["variables"]["properties"]
    variables["namespace"]["default"] = k8s.namespace
    variables["service_account_name"]["default"] = service_account(department, settings)
    for kind in ("requests", "limits"):
        chosen: Resources = getattr(k8s.resources, kind)
        for name in ("cpu", "memory"):
            value = getattr(chosen, name)
            variables[f"{name}_{kind.removesuffix('s')}"]["default"] = value
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    secret = k8s.api_key_secret
    reference = {"name": secret.name, "key": secret.key, "optional": secret.optional}
    container["env"] = [{"name": API_KEY, "valueFrom": {"secretKeyRef": reference}}]


def same_template(have: dict[str, Any] | None, want: dict[str, Any] | None) -> bool:
    """Equal as JSON: the server hands a template back as it was given."""
    return json.dumps(have, sort_keys=True) == json.dumps(want, sort_keys=True)


# -- helpers ------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _key(part: Any) -> str:
    """A key as written, on one line and cut short: keys are the file author's text."""
    text = " ".join(repr(part)[1:-1].split()) if isinstance(part, str) else str(part)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _shown(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 4]}...'"
