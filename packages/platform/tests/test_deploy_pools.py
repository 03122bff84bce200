"""`airnub deploy --pool-type`: Docker and Kubernetes pools against the session's real
Prefect server, on throwaway departments."""

import itertools
import json

import pytest
from airnub_platform import deploy, work_pools
from airnub_platform.cli import app
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_api")
REGISTRY, TAG = "127.0.0.1:5000/acme", "3f2a9c0d1e"
_made = itertools.count(1)


@pytest.fixture
def department(make_department):
    """A fresh department per test (dept_pools_<n>), with a work-pool.yaml, not deployed."""
    name = f"dept_pools_{next(_made)}"
    folder = make_department(name, {"ingestion": ["feed"]})
    (folder / work_pools.FILE_NAME).write_text("kubernetes: {namespace: team-a}\n")
    return name


def pool_name(department):
    return department.replace("_", "-")


def image(department):
    return f"{REGISTRY}/{pool_name(department)}:{TAG}"


def run(department, pool_type, env="local", **options):
    target = deploy.Target(pool_type, REGISTRY, TAG)
    with get_client(sync_client=True) as client:
        return deploy.deploy(client, department, env, target=target, **options)


def server_pool(department):
    with get_client(sync_client=True) as client:
        return client.read_work_pool(pool_name(department))


def deployed(department):
    with get_client(sync_client=True) as client:
        return deploy.existing_deployments(client, department)


def actions(results):
    return [action for action, _ in results]


def cli(*args):
    return CliRunner().invoke(app, ["deploy", *args], terminal_width=400)


def test_a_kubernetes_pool_is_created_from_the_file_and_pins_the_image(department):
    first = run(department, "kubernetes")
    assert ("create pool", pool_name(department)) in first
    assert ("image", image(department)) in first
    pool = server_pool(department)
    assert pool.type == "kubernetes"
    variables = pool.base_job_template["variables"]["properties"]
    assert variables["namespace"]["default"] == "team-a"
    assert variables["service_account_name"]["default"] == pool_name(department)
    assert variables["env"]["default"] == {"AIRNUB_ENV": "local"}
    found = deployed(department)
    assert found
    for deployment in found.values():
        assert deployment.job_variables["image"] == image(department)
        assert str(deployment.entrypoint).startswith(f"{department}.")  # module paths still
    again = run(department, "kubernetes")
    assert set(actions(again)) == {"image", "unchanged"}  # the pool too: no update


def test_a_work_pool_yaml_change_updates_the_kubernetes_pool(department):
    run(department, "kubernetes")
    folder = deploy.prefect_yaml.location(department).parent
    (folder / work_pools.FILE_NAME).write_text(
        "kubernetes:\n  namespace: team-b\n  resources: {limits: {memory: 2Gi}}\n"
    )
    assert ("update pool", pool_name(department)) in run(department, "kubernetes", dry_run=True)
    assert (
        server_pool(department).base_job_template["variables"]["properties"]["namespace"]["default"]
        == "team-a"
    )  # a dry run wrote nothing
    assert ("update pool", pool_name(department)) in run(department, "kubernetes")
    variables = server_pool(department).base_job_template["variables"]["properties"]
    assert variables["namespace"]["default"] == "team-b"
    assert variables["memory_limit"]["default"] == "2Gi"
    assert "update pool" not in actions(run(department, "kubernetes"))


def test_an_operators_change_to_a_kubernetes_pool_is_put_back(department):
    run(department, "kubernetes")
    with get_client(sync_client=True) as client:
        template = server_pool(department).base_job_template
        container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
            "containers"
        ][0]
        container["env"] = [{"name": "PREFECT_API_KEY", "value": "pnu_pasted_by_hand"}]
        client.update_work_pool(pool_name(department), WorkPoolUpdate(base_job_template=template))
    assert ("update pool", pool_name(department)) in run(department, "kubernetes")
    assert "pnu_pasted_by_hand" not in json.dumps(server_pool(department).base_job_template)


def test_a_docker_pool_is_created_once_and_then_left_to_its_operator(department):
    results = run(department, "docker", env="staging")
    assert ("create pool", pool_name(department)) in results
    pool = server_pool(department)
    assert pool.type == "docker"
    variables = pool.base_job_template["variables"]["properties"]
    assert variables["env"]["default"] == {"AIRNUB_ENV": "staging"}
    assert {d.job_variables["image"] for d in deployed(department).values()} == {image(department)}
    # the operator mounts the data root: kept by every later deploy
    template = pool.base_job_template
    template["variables"]["properties"]["volumes"]["default"] = ["/srv/data:/data"]
    with get_client(sync_client=True) as client:
        client.update_work_pool(pool_name(department), WorkPoolUpdate(base_job_template=template))
    assert "update pool" not in actions(run(department, "docker", env="staging"))
    kept = server_pool(department).base_job_template["variables"]["properties"]["volumes"]
    assert kept["default"] == ["/srv/data:/data"]


def test_a_pool_of_another_type_is_never_retyped_and_nothing_is_written(department):
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool_name(department), type="process"))
    result = cli(department, "--pool-type", "kubernetes", "--registry", REGISTRY, "--tag", TAG)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"work pool '{pool_name(department)}' is a process pool, not kubernetes" in lines[0]
    assert "never retypes" in lines[0]
    assert server_pool(department).type == "process"
    assert deployed(department) == {}


def test_a_type_mismatch_in_any_department_stops_all_of_them(department, make_department):
    other = f"dept_pools_{next(_made)}"
    make_department(other, {})
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool_name(other), type="docker"))
    args = ["--pool-type", "kubernetes", "--registry", REGISTRY, "--tag", TAG]
    result = cli(department, other, *args)
    assert result.exit_code == 1
    assert "is a docker pool, not kubernetes" in result.output
    assert deployed(department) == {}  # the first department was not deployed either
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(pool_name(department))


def test_a_dry_run_shows_the_pinned_image_and_writes_nothing(department):
    args = ["--pool-type", "docker", "--registry", REGISTRY, "--tag", TAG, "--dry-run"]
    result = cli(department, *args)
    assert result.exit_code == 0, result.output
    assert image(department) in result.output
    assert "dry run: nothing written" in result.output
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(pool_name(department))
    assert deployed(department) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry", REGISTRY], "--registry: only for docker and kubernetes pools"),
        (["--tag", TAG], "--tag: only for docker and kubernetes pools"),
        (["--pool-type", "docker", "--tag", TAG], "--registry: required with --pool-type docker"),
        (["--pool-type", "kubernetes", "--registry", REGISTRY], "--tag: required with"),
        (["--pool-type", "ecs"], "--pool-type: 'ecs' is not one of process, docker, kubernetes"),
        (
            ["--pool-type", "docker", "--registry", "https://ghcr.io/acme", "--tag", TAG],
            "--registry: registry 'https://ghcr.io/acme' must not have a scheme",
        ),
        (
            ["--pool-type", "docker", "--registry", "GHCR.io", "--tag", TAG],
            "--registry: registry 'GHCR.io' must be lowercase",
        ),
        (
            ["--pool-type", "docker", "--registry", "ghcr.io", "--tag", "-rf"],
            "--tag: tag '-rf' must be 1-128 characters",
        ),
    ],
)
def test_hostile_options_are_one_line_naming_the_option(department, args, message):
    result = cli(department, *args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert message in " ".join(result.output.split())
    assert deployed(department) == {}


def test_a_registry_with_credentials_is_refused_without_echoing_them(department):
    secret = "ghp_s3cr3t0123456789"
    args = ["--pool-type", "docker", "--registry", f"robot:{secret}@ghcr.io", "--tag", TAG]
    result = cli(department, *args)
    assert result.exit_code == 2
    assert "must not hold a user name or password" in result.output
    assert secret not in result.output


def test_a_broken_work_pool_yaml_stops_the_deploy_before_anything_is_written(department):
    folder = deploy.prefect_yaml.location(department).parent
    (folder / work_pools.FILE_NAME).write_text("kubernetes: {resources: {limits: {cpu: lots}}}\n")
    result = cli(department, "--pool-type", "kubernetes", "--registry", REGISTRY, "--tag", TAG)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "work-pool.yaml: kubernetes.resources.limits.cpu: 'lots' is not a Kubernetes" in output
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(pool_name(department))


def test_a_literal_api_key_in_prefect_yaml_is_refused_unshown(make_department):
    name = f"dept_pools_{next(_made)}"
    pool = pool_name(name)
    key = "pnu_" + "k" * 30
    make_department(
        name,
        {},
        prefect_yaml=f"""
name: {pool}
pull: []
deployments:
  - name: {pool}-ingestion
    entrypoint: {name}.ingestion_flow_{name}:ingestion_flow
    work_pool: {{name: {pool}, job_variables: {{env: {{PREFECT_API_KEY: {key}}}}}}}
""",
    )
    result = cli(name)
    assert result.exit_code == 1
    assert "job_variables.env.PREFECT_API_KEY: an API key may not be written here" in " ".join(
        result.output.split()
    )
    assert key not in result.output


def test_retire_removes_a_kubernetes_pool_like_any_other(department):
    run(department, "kubernetes")
    with get_client(sync_client=True) as client:
        results = deploy.retire(client, department)
        assert ("delete pool", pool_name(department)) in results
        with pytest.raises(ObjectNotFound):
            client.read_work_pool(pool_name(department))


def name_pool(department, pool):
    """Hand-edit the department's prefect.yaml so its deployments name ``pool``."""
    path = deploy.prefect_yaml.location(department)
    own = f"      name: {pool_name(department)}\n"
    path.write_text(path.read_text().replace(own, f"      name: {pool}\n"))


def test_another_departments_own_pool_is_refused_and_left_alone(department, make_department):
    other = f"dept_pools_{next(_made)}"
    make_department(other, {"ingestion": ["feed"]})
    run(other, "kubernetes")
    before = server_pool(other).base_job_template
    name_pool(department, pool_name(other))
    args = ["--pool-type", "kubernetes", "--registry", REGISTRY, "--tag", TAG]
    result = cli(department, *args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"work_pool.name: '{pool_name(other)}' is {other}'s own work pool" in lines[0]
    assert server_pool(other).base_job_template == before  # not given this department's
    assert deployed(department) == {}


def test_a_pool_departments_share_by_name_is_made_once_and_then_left_alone(
    department, make_department
):
    shared = f"k8s-shared-{next(_made)}"
    other = f"dept_pools_{next(_made)}"
    make_department(other, {"ingestion": ["feed"]})
    for each in (department, other):
        name_pool(each, shared)
    assert ("create pool", shared) in run(department, "kubernetes")
    with get_client(sync_client=True) as client:
        made = client.read_work_pool(shared).base_job_template
    account = made["variables"]["properties"]["service_account_name"]
    assert account["default"] == pool_name(department)
    # the other department's work-pool.yaml would flip it to its own account: left alone
    assert "update pool" not in actions(run(other, "kubernetes"))
    assert "update pool" not in actions(run(department, "kubernetes"))
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(shared).base_job_template == made
