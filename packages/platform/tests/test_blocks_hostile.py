"""`airnub blocks sync` attacked through the variables and roots it takes."""

import pytest
from airnub_core import storage
from airnub_platform.cli import app
from airnub_platform.testing import S3_TEST_CREDENTIALS, importable_departments, write_department
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT = "dept_blocks_hostile"


@pytest.fixture(scope="module", autouse=True)
def department(tmp_path_factory):
    """A throwaway department that declares no Secret block."""
    root = tmp_path_factory.mktemp("blocks-hostile")
    write_department(root, DEPT, {"ingestion": ["one"]})
    with importable_departments(root, {DEPT: "Hostile Blocks"}):
        yield DEPT


@pytest.fixture(autouse=True)
def aws_variables(monkeypatch):
    for name, value in S3_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", storage.DATA_ROOT_ENV):
        monkeypatch.delenv(name, raising=False)
    yield
    with get_client(sync_client=True) as client:
        for block in client.read_block_documents():
            if block.name == storage.DATA_ROOT_BLOCK:
                client.delete_block_document(block.id)


def sync(*args):
    return CliRunner().invoke(app, ["blocks", "sync", DEPT, *args])


def saved(block_type: str):
    with get_client(sync_client=True) as client:
        return client.read_block_document_by_name(
            storage.DATA_ROOT_BLOCK, block_type, include_secrets=True
        ).data


def data_root_blocks() -> int:
    with get_client(sync_client=True) as client:
        return sum(b.name == storage.DATA_ROOT_BLOCK for b in client.read_block_documents())


@pytest.mark.parametrize(
    ("variable", "endpoint"),
    [
        ("AWS_ENDPOINT_URL", "http://AKIAHOSTILE:hunter2@127.0.0.1:9"),
        ("AWS_ENDPOINT_URL_S3", "https://127.0.0.1:9/?X-Amz-Signature=hunter2"),
        ("AWS_ENDPOINT_URL", "file:///etc/hunter2"),
    ],
)
def test_an_endpoint_variable_that_is_not_a_plain_server_is_refused_before_any_write(
    variable, endpoint, monkeypatch
):
    monkeypatch.setenv(variable, endpoint)
    done = sync("--data-root", "s3://bucket/root")
    assert done.exit_code == 2, done.output
    assert done.output.startswith(f"error: nothing written: ${variable}: refused")
    assert len(done.output.strip().splitlines()) == 1 and "hunter2" not in done.output
    assert data_root_blocks() == 0


def test_the_saved_endpoint_is_the_one_botocore_would_use_here(monkeypatch):
    """``AWS_ENDPOINT_URL_S3`` wins over ``AWS_ENDPOINT_URL`` for botocore: the block
    saves that one, or keyless workers would write to another server than this host."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.2:9")
    done = sync("--data-root", "s3://bucket/root")
    assert done.exit_code == 0, done.output
    assert S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in done.output
    assert saved("aws-credentials")["aws_client_parameters"]["endpoint_url"] == (
        "http://127.0.0.2:9"
    )


@pytest.mark.parametrize("root", ["s3://bucket//root", "s3://bucket/root\tx", "s3://bucket:9/r"])
def test_a_root_url_naming_odd_keys_is_refused_before_any_write(root):
    done = sync("--data-root", root)
    assert done.exit_code == 2, done.output
    assert done.output.startswith("error: nothing written: --data-root: refused")
    assert len(done.output.strip().splitlines()) == 1
    assert data_root_blocks() == 0


def test_a_file_url_in_capitals_is_a_local_root(tmp_path):
    done = sync("--data-root", "FILE://" + str(tmp_path / "root"))
    assert done.exit_code == 0, done.output
    assert saved("local-file-system")["basepath"] == str(tmp_path / "root")
