"""`airnub blocks sync` against the session's Prefect server."""

import pytest
from airnub_core import storage
from airnub_platform.cli import app
from airnub_platform.testing import importable_departments, write_department
from prefect import flow
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.filesystems import LocalFileSystem
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
DEPT = "dept_blocks"
BLOCK = "dept-blocks-api-key"
ENV = "AIRNUB_SECRET_DEPT_BLOCKS_API_KEY"
TOKEN = "blk-91c2-do-not-print"


@pytest.fixture(scope="module", autouse=True)
def department(tmp_path_factory):
    """A throwaway department that declares one Secret block."""
    root = tmp_path_factory.mktemp("blocks")
    write_department(root, DEPT, {"ingestion": ["one"]})
    (root / DEPT / "configs" / "blocks.yaml").write_text(f"secrets:\n  - {BLOCK}\n")
    with importable_departments(root, {DEPT: "Blocks Team"}):
        yield DEPT


@pytest.fixture(autouse=True)
def no_data_root_block_left():
    yield
    with get_client(sync_client=True) as client:
        for block in client.read_block_documents():
            if block.name == storage.DATA_ROOT_BLOCK:
                client.delete_block_document(block.id)
    storage._block_root.cache_clear()
    storage._credentials.cache_clear()


def sync(*args):
    return CliRunner().invoke(app, ["blocks", "sync", DEPT, *args])


def block_names():
    with get_client(sync_client=True) as client:
        return {b.name for b in client.read_block_documents()}


def test_a_missing_secret_variable_is_named_and_nothing_is_written(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    before = block_names()
    result = sync()
    assert result.exit_code == 1
    assert f"needs ${ENV}, which is not set" in " ".join(result.output.split())
    assert block_names() == before


def test_secrets_come_from_the_environment_and_are_never_printed(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, TOKEN)
    first = sync("--data-root", str(tmp_path / "root"))
    assert first.exit_code == 0, first.output
    assert TOKEN not in first.output
    assert "create" in first.output and BLOCK in first.output
    block = Secret.load(BLOCK)
    assert isinstance(block, Secret) and block.get() == TOKEN
    again = sync("--data-root", str(tmp_path / "root"))
    assert again.output.count("unchanged") == 2
    monkeypatch.setenv(ENV, TOKEN + "-rotated")
    assert "update" in sync("--data-root", str(tmp_path / "root")).output


def test_runs_write_under_the_data_root_block(monkeypatch, tmp_path):
    LocalFileSystem(basepath=str(tmp_path / "from-block")).save(
        storage.DATA_ROOT_BLOCK, overwrite=True
    )
    monkeypatch.delenv(storage.DATA_ROOT_ENV)
    storage._block_root.cache_clear()

    @flow
    def where() -> str:
        return str(storage.data_root())

    try:
        assert where() == str(tmp_path / "from-block")
        assert storage.data_root() != tmp_path / "from-block"  # outside a run: no lookup
    finally:
        with get_client(sync_client=True) as client:
            block = client.read_block_document_by_name(storage.DATA_ROOT_BLOCK, "local-file-system")
            client.delete_block_document(block.id)
        storage._block_root.cache_clear()


def test_runs_write_to_an_s3_root_with_the_keys_blocks_sync_saved(s3_endpoint, monkeypatch):
    """`blocks sync --data-root s3://...` with the standard AWS variables saves the root and
    an aws-credentials block; a worker with none of those variables writes to the bucket."""
    import s3fs
    from airnub_platform.testing import S3_TEST_CREDENTIALS

    environment = {**S3_TEST_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(ENV, TOKEN)
    monkeypatch.delenv(storage.DATA_ROOT_ENV, raising=False)
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir("blocks-root")
    done = sync("--data-root", "s3://blocks-root/root")
    assert done.exit_code == 0, done.output
    assert "aws-credentials" in done.output
    assert S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in done.output
    for name in environment:
        monkeypatch.delenv(name)
    storage._block_root.cache_clear()

    @flow
    def write() -> str:
        folder = storage.output_dir("dept_x", "ingestion", "feed")
        return str(storage.write_text_atomic(folder / "out.txt", "from a keyless worker"))

    assert write() == "s3://blocks-root/root/dept_x/ingestion/feed/out.txt"
    reader = s3fs.S3FileSystem(key=S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                               secret=S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                               client_kwargs={"endpoint_url": s3_endpoint},
                               skip_instance_cache=True)  # fmt: skip
    assert reader.cat("blocks-root/root/dept_x/ingestion/feed/out.txt") == b"from a keyless worker"


@pytest.mark.parametrize(
    "root", ["s3://user:hunter2@bucket/root", "http://example.org/x", "gs://bucket/root"]
)
def test_a_data_root_that_runs_would_refuse_is_refused_before_any_block_is_written(
    root, monkeypatch
):
    monkeypatch.setenv(ENV, TOKEN)
    before = block_names()
    done = sync("--data-root", root)
    assert done.exit_code == 2
    assert done.output.startswith("error: nothing written: --data-root: ")
    assert len(done.output.strip().splitlines()) == 1 and "hunter2" not in done.output
    assert block_names() == before


def test_an_object_storage_root_in_the_environment_makes_a_remote_block(monkeypatch):
    monkeypatch.setenv(ENV, TOKEN)
    monkeypatch.setenv(storage.DATA_ROOT_ENV, "s3://bucket/root")
    result = sync()
    assert result.exit_code == 0, result.output
    assert "s3://bucket/root" in " ".join(result.output.split())
