"""`airnub dev` brings the platform up on loopback, runs every department, and stops clean.

It runs in a scratch workspace whose departments the test made with the generators
(``scratch_root``), so it holds whatever the repository's own departments are. Its data
root is a bucket on a loopback S3 server, so the workers' runs write to object storage."""

import os
import subprocess
from pathlib import Path

import pytest
from airnub_platform import dev, local_api, remote
from airnub_platform.testing import (
    S3_TEST_CREDENTIALS,
    SCRATCH_DEPARTMENTS,
    SCRATCH_INGESTION_DEPLOYMENTS,
    clean_env,
)

BUCKET = "airnub-dev"


@pytest.fixture(scope="module")
def platform(tmp_path_factory, scratch_root, s3_endpoint):
    import s3fs

    scratch = tmp_path_factory.mktemp("dev")
    env = {k: v for k, v in clean_env().items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(scratch / "home"), "AIRNUB_DATA_ROOT": f"s3://{BUCKET}/data"}
    env |= {**S3_TEST_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    s3fs.S3FileSystem(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                      client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True,
                      ).mkdir(BUCKET)  # fmt: skip
    airnub = str(scratch_root / ".venv" / "bin" / "airnub")  # the scratch workspace's own
    port = local_api.free_port()
    log = (scratch / "dev.log").open("w")
    process = subprocess.Popen([airnub, "dev", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, cwd=scratch_root)  # fmt: skip
    try:
        state = dev.wait_ready(scratch / "home" / "airnub-dev.json", process)
    except TimeoutError as error:
        process.kill()
        pytest.fail(f"{error}:\n{(scratch / 'dev.log').read_text()[-3000:]}")
    yield {"env": env, "url": state.api_url, "scratch": scratch, "state": state, "s3": s3_endpoint,
           "process": process, "airnub": airnub, "root": scratch_root}  # fmt: skip
    if process.poll() is None:
        process.kill()


def airnub(platform, *args):
    return subprocess.run([platform["airnub"], *args], env=platform["env"], capture_output=True,
                          text=True, cwd=platform["root"])  # fmt: skip


def test_a_second_one_says_it_is_running(platform):
    status = airnub(platform, "dev", "--status")
    assert status.returncode == 0
    assert "ready" in status.stdout and f"{len(SCRATCH_DEPARTMENTS)} workers" in status.stdout
    second = airnub(platform, "dev", "--port", str(local_api.free_port()))
    assert second.returncode == 1
    assert "airnub dev is already running" in second.stderr


def test_each_departments_deployment_runs_to_completion(platform):
    runs = [
        remote.trigger(platform["url"], name) for name in SCRATCH_INGESTION_DEPLOYMENTS.values()
    ]
    assert set(remote.wait_for(platform["url"], runs).values()) == {"COMPLETED"}
    import s3fs

    bucket = s3fs.S3FileSystem(key=S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                               secret=S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                               client_kwargs={"endpoint_url": platform["s3"]},
                               skip_instance_cache=True)  # fmt: skip
    for department in SCRATCH_DEPARTMENTS:
        assert bucket.isfile(f"{BUCKET}/data/{department}/ingestion/feed/example.csv")


CHROMIUM = "/usr/bin/chromium"  # Debian's; browser downloads do not work on these machines


def test_the_ui_shows_conventional_names_tags_and_a_completed_run(platform):
    """In a real headless browser: the spec's "Prefect UI clarity", as a user sees it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")
    ui = platform["url"].removesuffix("/api")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page()
        # The UI is a single-page app; on two busy cores it can take longer than 5 s to render.
        page.set_default_timeout(30_000)
        sync_api.expect.set_options(timeout=30_000)
        page.goto(f"{ui}/deployments")
        for flow_name in ("Ingestion Flow (Scratch Team)", "Analysis Flow (Second Team)"):
            sync_api.expect(page.get_by_text(flow_name, exact=True).first).to_be_visible()
        page.get_by_text("dept-scratch-ingestion", exact=True).click()
        sync_api.expect(page.get_by_text("Entrypoint")).to_be_visible()
        details = page.inner_text("body")
        for tag in ("dept_scratch", "ingestion", "airnub-managed"):
            assert tag in details
        page.goto(f"{ui}/runs")
        run = page.locator("text=Ingestion Flow (Second Team)").first
        sync_api.expect(run).to_be_visible()
        assert "Completed" in page.inner_text("body")
        browser.close()


def test_stop_leaves_no_process_behind(platform):
    pids = [platform["state"].pid, *platform["state"].children.values()]
    stopped = airnub(platform, "dev", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    platform["process"].wait(timeout=30)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (platform["scratch"] / "home" / "airnub-dev.json").exists()
    assert airnub(platform, "dev", "--status").returncode == 1
