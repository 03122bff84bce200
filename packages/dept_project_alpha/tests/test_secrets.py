"""Alpha's public API category with a Secret block: the token is used and never leaks."""

import pytest
from airnub_platform.testing import published_anywhere
from dept_project_alpha.ingestion.public_api_data import (
    ingest_public_api_data_flow_dept_project_alpha as public_api,
)
from prefect.blocks.system import Secret
from pydantic import SecretStr

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_a_secret_block_is_used_and_never_logged_or_published(httpserver, airnub_data_root):
    token = "tok-7f3a9c-never-show-me"
    Secret(value=SecretStr(token)).save("test-api-key", overwrite=True)
    httpserver.expect_request(
        "/api", headers={"Authorization": f"Bearer {token}"}
    ).respond_with_json({"results": [{"id": "r1"}], "next": None})
    overrides = {"url": httpserver.url_for("/api"), "api_key_block": "test-api-key"}
    state = public_api.ingest_public_api_data(overrides=overrides, return_state=True)
    assert state.is_completed(), state.message
    assert token not in published_anywhere(state)
    assert (
        token
        not in (airnub_data_root / "dept_project_alpha")
        .joinpath("ingestion/public_api_data/records.json")
        .read_text()
    )
