"""The Kubernetes job a department's runs become, rendered by prefect-kubernetes's own code
(no cluster) and validated against the Kubernetes schemas; and work-pool.yaml refused
in one line whenever it cannot be used."""

import asyncio
import json
import uuid

import kubernetes_validate
import pytest
from airnub_core.conventions import ConventionError, image_reference
from airnub_platform import deploy, work_pools
from airnub_platform.work_pools import WorkPoolError
from hypothesis import given
from hypothesis import strategies as st
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_KEY, temporary_settings
from prefect_docker.worker import DockerWorker
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

KUBERNETES_VERSION = "1.31"  # the schemas the manifests are validated against
DEPARTMENT = "dept_pools_render"
IMAGE = image_reference(DEPARTMENT, "registry.example.com/acme", "3f2a9c0d")
# What a worker started with an API key holds: it must never reach the job.
WORKER_KEY = "pnu_worker_literal_key_0123456789"
WORK_POOL_YAML = """\
kubernetes:
  namespace: data-team
  resources:
    requests: {cpu: 500m, memory: 256Mi}
    limits: {cpu: 2, memory: 1Gi}
  api_key_secret: {name: prefect-cloud, key: api-key}
"""


@pytest.fixture
def department(make_department):
    folder = make_department(DEPARTMENT, {"ingestion": ["feed"]})
    (folder / work_pools.FILE_NAME).write_text(WORK_POOL_YAML)
    return folder


def job_manifest(department: str, env: str = "staging") -> dict:
    """The Job the worker would submit for a run of the department's ingestion deployment,
    with the job variables `airnub deploy` writes for a Kubernetes pool."""
    template = work_pools.base_job_template(
        "kubernetes", department, env, work_pools.read(department)
    )
    assert template is not None
    target = deploy.Target("kubernetes", "registry.example.com/acme", "3f2a9c0d")
    [item, *_] = deploy.planned(department, env, target)
    values = deploy.wanted(item)["job_variables"]
    with temporary_settings(updates={PREFECT_API_KEY: WORKER_KEY}):
        # the worker's own settings would reach the job: the precondition of the test
        assert KubernetesWorkerJobConfiguration._base_environment()["PREFECT_API_KEY"]
        configuration = asyncio.run(
            KubernetesWorkerJobConfiguration.from_template_and_values(template, values)
        )
        flow_run = FlowRun(id=uuid.uuid4(), name="brisk-otter", flow_id=uuid.uuid4())
        configuration.prepare_for_flow_run(flow_run)
    return configuration.job_manifest


def container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def validate(manifest: dict) -> None:
    """Valid for Kubernetes, strictly (no field it does not know) but for one quirk of
    prefect-kubernetes: its worker refuses a template without ``parallelism: 1`` and
    ``completions: 1`` in the pod spec, Job fields that the API server drops there with a
    warning. Without exactly those two, not one unknown field."""
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION)
    pod = manifest["spec"]["template"]["spec"]
    quirk = {key: pod.pop(key) for key in ("parallelism", "completions")}
    assert quirk == {"parallelism": 1, "completions": 1}
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_job_manifest_validates_against_kubernetes(department):
    manifest = job_manifest(DEPARTMENT)
    validate(manifest)
    assert manifest["kind"] == "Job"
    assert manifest["metadata"]["namespace"] == "data-team"


def test_the_job_runs_the_pinned_image_with_its_resources_and_account(department):
    manifest = job_manifest(DEPARTMENT)
    job = container(manifest)
    assert job["image"] == IMAGE
    assert job["resources"] == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    assert manifest["spec"]["template"]["spec"]["serviceAccountName"] == "dept-pools-render"
    env = {e["name"]: e.get("value") for e in job["env"]}
    assert env["AIRNUB_ENV"] == "staging"


def test_the_api_key_is_a_secret_reference_never_a_literal(department):
    manifest = job_manifest(DEPARTMENT)
    keys = [e for e in container(manifest)["env"] if e["name"] == "PREFECT_API_KEY"]
    assert keys == [
        {
            "name": "PREFECT_API_KEY",
            "valueFrom": {
                "secretKeyRef": {"name": "prefect-cloud", "key": "api-key", "optional": False}
            },
        }
    ]
    assert WORKER_KEY not in json.dumps(manifest)


def test_the_defaults_without_a_file_validate_too(make_department):
    make_department("dept_pools_bare", {})
    manifest = job_manifest("dept_pools_bare", env="local")
    validate(manifest)
    job = container(manifest)
    assert job["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert manifest["metadata"]["namespace"] == "prefect"
    assert manifest["spec"]["template"]["spec"]["serviceAccountName"] == "dept-pools-bare"
    reference = next(e for e in job["env"] if e["name"] == "PREFECT_API_KEY")["valueFrom"]
    assert reference["secretKeyRef"]["name"] == "prefect-api-key"


def test_a_run_without_a_pin_still_gets_the_pools_env_and_key_reference():
    """A run started from the UI with other job variables keeps AIRNUB_ENV and the Secret."""
    template = work_pools.base_job_template("kubernetes", "dept_pools_ui", "prod")
    assert template is not None
    configuration = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(template, {"env": {"X": "1"}})
    )
    configuration.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="r", flow_id=uuid.uuid4()))
    env = container(configuration.job_manifest)["env"]
    assert {"name": "AIRNUB_ENV", "value": "prod"} in env
    assert {"name": "X", "value": "1"} in env
    assert any("valueFrom" in e and e["name"] == "PREFECT_API_KEY" for e in env)


def test_the_templates_are_the_workers_own_apart_from_the_key():
    """Every variable prefect-kubernetes offers keeps working; the Docker template is
    prefect-docker's, so a new version of either shows up here."""
    ours = work_pools.default_template("kubernetes")
    theirs = KubernetesWorker.get_default_base_job_template()
    assert ours["variables"] == theirs["variables"]
    for side in (ours, theirs):
        side["job_configuration"].pop("env")
        container(side["job_configuration"]["job_manifest"]).pop("env")
    assert ours == theirs
    assert work_pools.default_template("docker") == DockerWorker.get_default_base_job_template()


def test_a_docker_pool_gets_the_environment_and_keeps_the_rest():
    template = work_pools.base_job_template("docker", "dept_pools_docker", "staging")
    assert template is not None
    assert template["variables"]["properties"]["env"]["default"] == {"AIRNUB_ENV": "staging"}
    template["variables"]["properties"]["env"].pop("default")
    assert template == DockerWorker.get_default_base_job_template()
    assert work_pools.base_job_template("process", "dept_pools_docker", "staging") is None


# -- hostile work-pool.yaml -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "why"),
    [
        ("kubernetes: {namespace: 5}", "kubernetes.namespace", "must be text"),
        ("kubernetes: {namespace: Data_Team}", "kubernetes.namespace", "DNS label"),
        ("kubernetes: {namespace: " + "a" * 64 + "}", "kubernetes.namespace", "63"),
        ("kubernetes: {nmespace: x}", "kubernetes.nmespace", "not a known setting"),
        (
            "kubernetes: {resources: {limits: {gpu: 1}}}",
            "kubernetes.resources.limits.gpu",
            "known here: cpu, memory",
        ),
        (
            "kubernetes: {resources: {limits: {cpu: lots}}}",
            "kubernetes.resources.limits.cpu",
            "not a Kubernetes quantity",
        ),
        (
            "kubernetes: {resources: {limits: {cpu: -1}}}",
            "kubernetes.resources.limits.cpu",
            "not a Kubernetes quantity",
        ),
        (
            "kubernetes: {resources: {limits: {memory: 1.5}}}",
            "kubernetes.resources.limits.memory",
            "not a float",
        ),
        (
            "kubernetes: {resources: {limits: {memory: 1GB}}}",
            "kubernetes.resources.limits.memory",
            "not a Kubernetes quantity",
        ),
        (
            "kubernetes: {resources: {limits: {cpu: true}}}",
            "kubernetes.resources.limits.cpu",
            "not true/false",
        ),
        (
            "kubernetes: {resources: {requests: {memory: 2Gi}}}",
            "kubernetes.resources",
            "requests.memory 2Gi is more than limits.memory 1Gi",
        ),
        (
            "kubernetes: {service_account_name: 'Robot Account'}",
            "kubernetes.service_account_name",
            "DNS subdomain",
        ),
        (
            "kubernetes: {api_key_secret: {name: prefect-api-key, key: 'a/b'}}",
            "kubernetes.api_key_secret.key",
            "Secret key",
        ),
        (
            "kubernetes: {api_key_secret: {optional: 'yes'}}",
            "kubernetes.api_key_secret.optional",
            "true or false",
        ),
        ("kubernetes: [namespace]", "kubernetes", "must be a mapping"),
        ("- kubernetes", "", "must be a mapping with a kubernetes key, not a list"),
        ("kubernetes: {namespace: x", "", "invalid YAML"),
    ],
)
def test_a_hostile_file_is_one_line_naming_the_file_and_field(tmp_path, text, field, why):
    path = tmp_path / work_pools.FILE_NAME
    path.write_text(text + "\n")
    with pytest.raises(WorkPoolError) as error:
        work_pools.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {field}")
    assert why in message
    assert "\n" not in message


def test_aliases_and_bombs_are_refused_before_they_grow(tmp_path):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)},*{chr(97 + n)},*{chr(97 + n)}]\n"
        for n in range(9)
    )
    path = tmp_path / work_pools.FILE_NAME
    for text in (bomb, "kubernetes: &k {namespace: x}\nother: *k\n", "[" * 200 + "]" * 200):
        path.write_text(text)
        with pytest.raises(WorkPoolError) as error:
            work_pools.load(path)
        assert str(error.value).startswith(f"{path}: ")
        assert "\n" not in str(error.value)


def test_a_fifo_a_folder_and_binary_are_refused(tmp_path):
    import os

    path = tmp_path / work_pools.FILE_NAME
    os.mkfifo(path)  # opened without blocking, then refused
    with pytest.raises(WorkPoolError, match="not a regular file"):
        work_pools.load(path)
    path.unlink()
    path.write_bytes(b"kubernetes: {namespace: \xff}\n")
    with pytest.raises(WorkPoolError, match="not UTF-8"):
        work_pools.load(path)


def test_an_empty_file_means_every_default(tmp_path):
    path = tmp_path / work_pools.FILE_NAME
    path.write_text("# nothing set\n")
    assert work_pools.load(path) == work_pools.WorkPoolSettings()


_text_or_number = st.one_of(st.text(max_size=12), st.integers(-5, 10**6), st.floats())


@given(_text_or_number)
def test_a_quantity_is_kubernetes_or_refused_in_one_line(value):
    data = {"kubernetes": {"resources": {"requests": {}, "limits": {"memory": value}}}}
    try:
        settings = work_pools.settings_from(data, "w.yaml")
    except WorkPoolError as error:
        assert str(error).startswith("w.yaml: kubernetes.resources.limits.memory: ")
        assert "\n" not in str(error)
    else:
        quantity = settings.kubernetes.resources.limits.memory
        assert quantity is not None
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": quantity}}}]},
        }
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_image_rule_refuses_before_a_template_is_rendered():
    with pytest.raises(ConventionError):
        image_reference(DEPARTMENT, "registry.example.com/Acme", "x")


@pytest.mark.parametrize(
    ("request_", "limit"),
    [("1E", "2E"), ("1Ei", "1Ei"), ("1E", "1Ei"), ("999P", "1E"), ("1E3", "1k"), ("1Pi", "1Ei")],
)
def test_exa_and_exbi_compare_as_the_quantities_they_are(request_, limit):
    """E alone is exa and Ei exbi, not an exponent without digits."""
    resources = {"requests": {"memory": request_}, "limits": {"memory": limit}}
    settings = work_pools.settings_from({"kubernetes": {"resources": resources}}, "w.yaml")
    assert settings.kubernetes.resources.requests.memory == request_


def test_a_request_above_an_exa_limit_is_refused_as_such():
    resources = {"requests": {"memory": "2E"}, "limits": {"memory": "1Ei"}}
    with pytest.raises(WorkPoolError, match=r"^w\.yaml: kubernetes\.resources: requests\.memory"):
        work_pools.settings_from({"kubernetes": {"resources": resources}}, "w.yaml")


_suffixes = st.sampled_from(["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti",
                             "Pi", "Ei", "e3", "E3", "e-2", "E+1"])  # fmt: skip


@given(st.integers(0, 10**6), _suffixes, st.integers(0, 10**6), _suffixes)
def test_any_two_quantities_compare_or_are_refused_as_out_of_order(a, x, b, y):
    request_, limit = f"{a}{x}", f"{b}{y}"
    resources = {"requests": {"cpu": request_}, "limits": {"cpu": limit}}
    try:
        work_pools.settings_from({"kubernetes": {"resources": resources}}, "w.yaml")
    except WorkPoolError as error:
        assert str(error) == (
            f"w.yaml: kubernetes.resources: requests.cpu {request_} is more than limits.cpu"
            f" {limit}; Kubernetes refuses such a pod"
        )
        assert work_pools.amount(request_) > work_pools.amount(limit)


@pytest.mark.parametrize("key", [".", "..", "..data", "..."])
def test_secret_keys_kubernetes_refuses_are_refused(key):
    data = {"kubernetes": {"api_key_secret": {"key": key}}}
    with pytest.raises(WorkPoolError, match=r"^w\.yaml: kubernetes\.api_key_secret\.key: "):
        work_pools.settings_from(data, "w.yaml")
    for fine in (".dotfile", "a..b", "key."):
        data = {"kubernetes": {"api_key_secret": {"key": fine}}}
        assert work_pools.settings_from(data, "w.yaml").kubernetes.api_key_secret.key == fine


def test_a_symlink_to_a_secret_is_refused_without_showing_it(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$y$j9T$s3cr3tHash0123456789:20228:0:99999:7:::\n")
    path = tmp_path / work_pools.FILE_NAME
    path.symlink_to(secret)
    with pytest.raises(WorkPoolError) as error:
        work_pools.load(path)
    assert str(error.value) == f"{path}: a symbolic link; write the settings in the file itself"
    # the same lines in the file itself: refused, the key not shown as it is no setting name
    path.unlink()
    path.write_text(secret.read_text())
    with pytest.raises(WorkPoolError) as error:
        work_pools.load(path)
    assert "s3cr3t" not in str(error.value) and "root:" not in str(error.value)
    assert str(error.value) == f"{path}: (a key): not a known setting (known here: kubernetes)"
