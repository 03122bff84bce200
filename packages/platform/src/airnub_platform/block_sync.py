"""``airnub blocks sync``: the Prefect Blocks the departments declare.

* Secret blocks: each department lists the ones it needs in its package's
  ``configs/blocks.yaml`` (``secrets: [name, ...]``). A block's value comes from the
  environment variable named by convention, ``AIRNUB_SECRET_<NAME>`` with dashes as
  underscores; it is never read from YAML, printed or logged.
* The data-root storage block, ``airnub-data-root``: a LocalFileSystem at the data
  root by default, or a RemoteFileSystem for an object-storage URL (checked first, as
  runs check it). For an ``s3://`` root with ``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY`` set, also an ``aws-credentials`` block of the same name,
  holding them with ``AWS_ENDPOINT_URL`` (the only endpoint they are sent to) and
  ``AWS_DEFAULT_REGION``: workers then need no keys in their environment.
* Alert webhooks: for each department whose ``AIRNUB_ALERT_WEBHOOK_<DEPT_ID>`` is set, a
  custom-webhook notification block named ``<dept-id>-alerts``, the one its automations
  notify (``airnub automations sync``). The URL is kept among the block's secrets, never in
  its plain fields. It may not reach private, loopback or link-local addresses unless
  ``AIRNUB_ALERT_ALLOW_PRIVATE_URLS`` is true (Prefect's own default allows them). A
  notification block of another type (Slack, email) made by hand under that name is used
  as it is: with the variable unset it is left alone, with it set the sync refuses.

Everything is resolved before anything is written: ``airnub blocks sync`` stops with
nothing changed when an environment variable is missing (``airnub dev`` warns instead).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from airnub_core import config, conventions, object_storage, owners, storage
from pydantic import BaseModel, TypeAdapter

BLOCKS_FILE = ("configs", "blocks.yaml")
SECRET_ENV_PREFIX = "AIRNUB_SECRET_"
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
ALLOW_PRIVATE_ENV = "AIRNUB_ALERT_ALLOW_PRIVATE_URLS"
WEBHOOK_SLUG = "custom-webhook"  # Prefect's CustomWebhookNotificationBlock
# What the receiver gets, as JSON; Prefect fills in the notification's subject and body.
WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}", "block": "{{name}}"}


def secret_env_var(block_name: str) -> str:
    """``dept-project-alpha-api-key`` -> ``AIRNUB_SECRET_DEPT_PROJECT_ALPHA_API_KEY``."""
    return SECRET_ENV_PREFIX + block_name.upper().replace("-", "_")


@dataclass(frozen=True)
class Wanted:
    name: str
    kind: str  # "secret", "storage", "aws-credentials" or "alert-webhook"
    # the secret's value, the storage block's basepath, the AWS settings, or a webhook's
    # (url, allow private urls)
    value: Any
    origin: str


def declared_secrets(department: str) -> list[tuple[str, str]]:
    """(block name, where it is declared) for each Secret block a department needs."""
    path = config.package_dir(department).joinpath(*BLOCKS_FILE)
    if not path.is_file():
        return []
    data = config.read_yaml(path)
    unknown = sorted(set(data) - {"secrets"})
    if unknown:
        raise config.ConfigError(f"{path}: unknown keys {', '.join(unknown)}; expected 'secrets'")
    names = data.get("secrets") or []
    if not isinstance(names, list):
        raise config.ConfigError(f"{path}:secrets: expected a list of block names")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not BLOCK_NAME.fullmatch(name):
            raise config.ConfigError(
                f"{path}:secrets[{index}]: {name!r} is not a block name"
                " (lowercase letters, digits and dashes)"
            )
    return [(name, str(path)) for name in names]


def wanted_blocks(
    departments: Iterable[str], data_root_url: str | None
) -> tuple[list[Wanted], list[str]]:
    """Every block whose value is known, and a message for each missing variable."""
    wanted: list[Wanted] = []
    missing: list[str] = []
    for department in departments:
        for name, origin in declared_secrets(department):
            variable = secret_env_var(name)
            value = os.environ.get(variable)
            if not value:
                missing.append(
                    f"{origin}: Secret block {name!r} needs ${variable}, which is not set"
                )
                continue
            wanted.append(Wanted(name, "secret", value, origin))
    alerts, problems = alert_webhooks(departments)
    wanted += alerts
    missing += problems
    # AIRNUB_DATA_ROOT as written: an s3:// one makes a remote block, as --data-root does
    configured = os.environ.get(storage.DATA_ROOT_ENV)
    root = data_root_url or configured or str(storage.data_root())
    origin = "--data-root" if data_root_url else storage.DATA_ROOT_ENV if configured else ""
    if object_storage.is_remote_url(root):
        object_storage.remote_root(root, origin)  # refused here as a run would refuse it
    wanted.append(Wanted(storage.DATA_ROOT_BLOCK, "storage", root, "data root"))
    if (keys := _aws_keys()) and object_storage.uses_aws(root):
        wanted.append(Wanted(storage.DATA_ROOT_BLOCK, "aws-credentials", keys, AWS_ORIGIN))
    return wanted, missing


def allow_private_urls() -> bool:
    """``AIRNUB_ALERT_ALLOW_PRIVATE_URLS``: false unless set to true, 1 or yes."""
    raw = os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise config.ConfigError(f"${ALLOW_PRIVATE_ENV}: {raw[:20]!r} is not true or false")


def alert_webhooks(departments: Iterable[str]) -> tuple[list[Wanted], list[str]]:
    """A webhook block for each department whose alert variable is set, and a message for
    each variable that holds no usable URL (the URL itself is never shown)."""
    wanted: list[Wanted] = []
    problems: list[str] = []
    allow = None
    for department in departments:
        variable = conventions.alert_webhook_env(department)
        url = os.environ.get(variable, "").strip()
        if not url:
            continue
        try:
            if url.startswith("#"):
                raise ValueError("a #channel is not a URL; a webhook needs an http(s) URL")
            owners.check_channel(url)
        except ValueError as error:
            problems.append(f"${variable}: {error}")
            continue
        allow = allow_private_urls() if allow is None else allow
        name = conventions.alert_block_name(department)
        wanted.append(Wanted(name, "alert-webhook", (url, allow), f"${variable}"))
    return wanted, problems


AWS_ENV = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_DEFAULT_REGION",
}
AWS_ORIGIN = "$AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_ENDPOINT_URL, $AWS_DEFAULT_REGION"


def _aws_keys() -> dict[str, str] | None:
    """The standard AWS variables that are set, if the two keys are among them, with the
    endpoint botocore would send them to here (``AWS_ENDPOINT_URL_S3`` before
    ``AWS_ENDPOINT_URL``), so workers reading the block reach the same server."""
    keys = {field: os.environ[env] for field, env in AWS_ENV.items() if os.environ.get(env)}
    if not {"aws_access_key_id", "aws_secret_access_key"} <= set(keys):
        return None
    if variable := object_storage.environment_endpoint():
        keys["endpoint_url"] = object_storage.check_endpoint(os.environ[variable], f"${variable}")
    return keys


def _block(item: Wanted) -> Any:
    from prefect.blocks.system import Secret
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    if item.kind == "secret":
        return Secret(value=item.value)
    if item.kind == "alert-webhook":
        from prefect.blocks.notifications import CustomWebhookNotificationBlock
        from prefect.types import SecretDict

        url, allow = item.value
        return CustomWebhookNotificationBlock(
            name=item.name, url="{{webhook_url}}", json_data=WEBHOOK_JSON, headers=None,
            cookies=None, secrets=SecretDict({"webhook_url": url}), allow_private_urls=allow,
        )  # fmt: skip
    if item.kind == "aws-credentials":
        from prefect_aws import AwsClientParameters, AwsCredentials

        fields = dict(item.value)
        endpoint = fields.pop("endpoint_url", None)
        return AwsCredentials(**fields, aws_client_parameters=AwsClientParameters(
            endpoint_url=endpoint))  # fmt: skip
    if object_storage.is_remote_url(item.value):  # FILE:///x too is local
        return RemoteFileSystem(basepath=item.value)
    return LocalFileSystem(basepath=storage.local_path_of(item.value))


def _current(name: str, block: Any) -> Any:
    """The saved block of ``block``'s type named ``name``, or None."""
    try:
        # through its own class: Block.load would import every installed Prefect
        # collection to find the class (2 s here) when it is already known
        return type(block).load(name)
    except ValueError:  # Prefect's "Unable to find block document named ..."
        return None


def _same(existing: Any, block: Any) -> bool:
    if existing is None or type(existing) is not type(block):
        return False
    if hasattr(block, "secrets"):  # a webhook: the URL is among its secrets
        fields = ("url", "json_data", "allow_private_urls")
        return existing.secrets.get_secret_value() == block.secrets.get_secret_value() and all(
            getattr(existing, name) == getattr(block, name) for name in fields
        )
    if hasattr(block, "get"):  # a Secret: compare values without ever showing them
        return existing.get() == block.get()
    if hasattr(block, "aws_access_key_id"):  # credentials: compare, never show
        return _aws_fields(existing) == _aws_fields(block)
    return existing.basepath == block.basepath


class ForeignAlertBlock(RuntimeError):
    """A notification block made by hand holds an alert block's name."""


class _BlockType(BaseModel):
    slug: str = ""


class _BlockSchema(BaseModel):
    capabilities: list[str] | None = None


class BlockDocument(BaseModel):
    """A saved block as ``/block_documents/filter`` answers it, as far as read here: an
    answer of another shape is a ValidationError (one line from the CLI), not a traceback."""

    id: UUID
    name: str | None = None
    block_type: _BlockType | None = None
    block_schema: _BlockSchema | None = None

    @property
    def notifies(self) -> bool:
        return "notify" in ((self.block_schema and self.block_schema.capabilities) or [])


_BLOCK_DOCUMENTS = TypeAdapter(list[BlockDocument])


def notification_blocks(client: Any, name: str) -> list[tuple[UUID, str]]:
    """(id, type slug) of every saved notification block named ``name``, of any type."""
    body = {
        "block_documents": {"name": {"any_": [name]}, "is_anonymous": {"eq_": False}},
        "include_secrets": False,
    }
    response = client.request("POST", "/block_documents/filter", json=body)
    response.raise_for_status()
    return [
        (found.id, found.block_type.slug if found.block_type else "")
        for found in _BLOCK_DOCUMENTS.validate_json(response.content)
        if found.name == name and found.notifies
    ]


def refuse_foreign_alert_blocks(wanted: list[Wanted]) -> None:
    """Raise if a hand-made notification block of another type holds a webhook's name:
    two blocks of one name would leave the automations not knowing which to use."""
    from prefect.client.orchestration import get_client

    names = [item for item in wanted if item.kind == "alert-webhook"]
    if not names:
        return
    with get_client(sync_client=True) as client:
        for item in names:
            foreign = sorted(
                {s for _, s in notification_blocks(client, item.name)} - {WEBHOOK_SLUG}
            )
            if foreign:
                raise ForeignAlertBlock(
                    f"{item.origin}: a {foreign[0]} notification block named {item.name!r}"
                    f" already exists, made by hand; unset {item.origin} to keep it, or delete"
                    " it to use the webhook; nothing written"
                )


def sync(wanted: list[Wanted], *, dry_run: bool = False) -> list[tuple[str, Wanted]]:
    """Create or update each block; returns (action, item) with action create/update/unchanged.
    Everything is compared (and refused) before the first write."""
    refuse_foreign_alert_blocks(wanted)
    planned = []
    for item in wanted:
        block = _block(item)
        existing = _current(item.name, block)
        action = "unchanged" if _same(existing, block) else "update" if existing else "create"
        planned.append((action, item, block))
    if not dry_run:
        for action, item, block in planned:
            if action != "unchanged":
                block.save(item.name, overwrite=True)
    return [(action, item) for action, item, _ in planned]


def _aws_fields(block: Any) -> tuple[Any, ...]:
    def plain(value: Any) -> Any:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    endpoint = block.aws_client_parameters.endpoint_url
    return (*(plain(getattr(block, name)) for name in AWS_ENV), endpoint)
