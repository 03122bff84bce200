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

Everything is resolved before anything is written: ``airnub blocks sync`` stops with
nothing changed when an environment variable is missing (``airnub dev`` warns instead).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airnub_core import config, object_storage, storage

BLOCKS_FILE = ("configs", "blocks.yaml")
SECRET_ENV_PREFIX = "AIRNUB_SECRET_"
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def secret_env_var(block_name: str) -> str:
    """``dept-project-alpha-api-key`` -> ``AIRNUB_SECRET_DEPT_PROJECT_ALPHA_API_KEY``."""
    return SECRET_ENV_PREFIX + block_name.upper().replace("-", "_")


@dataclass(frozen=True)
class Wanted:
    name: str
    kind: str  # "secret", "storage" or "aws-credentials"
    value: Any  # the secret's value, the storage block's basepath, or the AWS settings
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
    if hasattr(block, "get"):  # a Secret: compare values without ever showing them
        return existing.get() == block.get()
    if hasattr(block, "aws_access_key_id"):  # credentials: compare, never show
        return _aws_fields(existing) == _aws_fields(block)
    return existing.basepath == block.basepath


def sync(wanted: list[Wanted], *, dry_run: bool = False) -> list[tuple[str, Wanted]]:
    """Create or update each block; returns (action, item) with action create/update/unchanged."""
    done = []
    for item in wanted:
        block = _block(item)
        existing = _current(item.name, block)
        action = "unchanged" if _same(existing, block) else "update" if existing else "create"
        if action != "unchanged" and not dry_run:
            block.save(item.name, overwrite=True)
        done.append((action, item))
    return done


def _aws_fields(block: Any) -> tuple[Any, ...]:
    def plain(value: Any) -> Any:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    endpoint = block.aws_client_parameters.endpoint_url
    return (*(plain(getattr(block, name)) for name in AWS_ENV), endpoint)
