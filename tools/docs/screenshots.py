"""The screenshots of docs/running-the-platform.md, made from real runs on loopback.

In a scratch workspace holding two departments made by the generators (never the
repository's own), with a fresh `prefect server start` on a free loopback port:
1. `airnub deploy`, `variables sync`, `blocks sync` (each department's alert webhook points
   at a receiver on 127.0.0.1) and `automations sync`, and `airnub run`; then one
   department is edited (quotas, alert rules, a new source) and committed, and
   `airnub plan --format markdown` is rendered as GitHub shows a job summary:
   plan-summary.png;
2. the change deployed and synced, that department's run fails (its new source is not
   there): the notification the receiver gets is rendered, notification.png; and the
   Prefect UI's automations page, automations-ui.png;
3. `airnub usage --png` over those runs, as the command drew it: usage.png.

The browser is Debian's /usr/bin/chromium driven by playwright. Every wait has a deadline;
the server is stopped by PID and the scratch folder removed, whatever happened. The PNGs
replace those in --out only once all of them were made.
Usage: uv run python tools/docs/screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import html
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airnub_platform.testing import webhook_receiver

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's; browser downloads do not work on these machines
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTH = 1000  # px: the PNGs stay small and readable in the docs' content column
EDITED = "dept_scratch"  # of scratch_workspace's two departments, the one the change edits
SERVER_DEADLINE = 120.0  # seconds for `prefect server start` to answer /health
COMMAND_DEADLINE = 300.0  # seconds for one airnub command
NOTIFY_DEADLINE = 120.0  # seconds for the server's triggers and actions to notify
BROWSER_DEADLINE_MS = 30_000  # the UI is a single-page app; two busy cores render slowly

# What a merge to main runs (the deploy job), in this order.
SYNC = (["deploy"], ["variables", "sync"], ["blocks", "sync"], ["automations", "sync"])

# As GitHub shows markdown (its job summaries among it): the parts a plan uses.
GITHUB_CSS = """
body { margin: 0; background: #fff; color: #1f2328; font: 14px/1.5 -apple-system,
  "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main { padding: 24px 32px; border: 1px solid #d1d9e0; border-radius: 6px; margin: 16px; }
h1, h2, h3 { font-weight: 600; margin: 24px 0 16px; line-height: 1.25; }
h1, h2 { padding-bottom: .3em; border-bottom: 1px solid #d1d9e0; }
h1 { font-size: 2em; } h2 { font-size: 1.5em; } h3 { font-size: 1.25em; }
h1:first-child, h2:first-child, h3:first-child { margin-top: 0; }
p, ul, table, pre { margin: 0 0 16px; }
code { font: 85% ui-monospace, SFMono-Regular, Menlo, monospace; padding: .2em .4em;
  background: #eff1f3; border-radius: 6px; }
pre { background: #f6f8fa; padding: 16px; border-radius: 6px; white-space: pre-wrap; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; text-align: left; }
tr:nth-child(2n) { background: #f6f8fa; }
.bar { font-weight: 600; padding: 8px 16px; margin: 16px 16px 0; color: #59636e; }
"""


def run(command: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> str:
    """Run an airnub or git command; raise naming it and its last line if it exits otherwise."""
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=COMMAND_DEADLINE, stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode not in ok:
        said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        shown = " ".join([Path(command[0]).name, *command[1:]])
        raise RuntimeError(f"`{shown}` exited {done.returncode}: {said}")
    return done.stdout


@contextmanager
def prefect_server(workspace: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`prefect server start` (services and UI on) on a free port; stopped by PID."""
    from airnub_platform import local_api

    port = local_api.free_port()
    url = f"http://127.0.0.1:{port}/api"
    command = [str(workspace / ".venv" / "bin" / "prefect"), "server", "start",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("w") as output:
        server = subprocess.Popen(command, env={**env, "PREFECT_API_URL": url}, cwd=workspace,
                                  stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        local_api.wait_healthy(url, server, log, timeout=SERVER_DEADLINE)
        yield url
    finally:
        stop(server)


def stop(process: subprocess.Popen) -> None:
    """SIGINT, then SIGKILL if it has not exited within 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def edit_department(workspace: Path) -> None:
    """A pull request's change to one department: quotas, alert rules, a new source (that
    is not there: once merged, the department's run fails)."""
    package = workspace / "packages" / EDITED
    with (package / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n[tool.airnub.limits]\nflow-runs = 4\ntask-runs = 8\n")
    configs = package / "src" / EDITED / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "automations.yaml").write_text(
        "rules:\n  - rule: late\n  - rule: running-longer\n    minutes: 30\n    stage: ingestion\n"
    )
    feed = configs / "variables" / "ingestion" / "feed.yaml"
    feed.write_text("sources:\n  - sample_data/feed/orders.csv\ntimeout_seconds: 30\nretries: 0\n")


def page_html(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{GITHUB_CSS}</style></head><body>{body}</body></html>")  # fmt: skip


def plan_page(markdown_text: str) -> str:
    """The plan as a pull request's job summary shows it."""
    import markdown

    rendered = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    bar = "<div class='bar'>plan (what this change would change on Prefect) summary</div>"
    return page_html("airnub plan", f"{bar}<main>{rendered}</main>")


def notification_page(notification: dict) -> str:
    """What the webhook received: its block, subject and body, as a chat client shows it."""
    subject = html.escape(str(notification.get("subject", "")))
    body = html.escape(str(notification.get("body", "")))
    block = html.escape(str(notification.get("block", "")))
    main = (f"<h3>{subject}</h3><pre><code>{body}</code></pre>"
            f"<p>Sent by the notification block <code>{block}</code>.</p>")  # fmt: skip
    bar = "<div class='bar'>Received by the webhook on 127.0.0.1</div>"
    return page_html("notification", f"{bar}<main>{main}</main>")


def screenshot_pages(pages: dict[Path, str], ui: tuple[str, Path] | None) -> None:
    """Each HTML page, and the UI page if given, as a PNG WIDTH pixels wide."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 200})
            page.set_default_timeout(BROWSER_DEADLINE_MS)
            for target, text in pages.items():
                page.set_content(text)
                page.screenshot(path=str(target), full_page=True)  # as tall as its content
            if ui is not None:
                url, target = ui
                page.set_viewport_size({"width": WIDTH, "height": 700})
                page.goto(url)
                expect(page.get_by_text("failed-or-crashed").first).to_be_visible(
                    timeout=BROWSER_DEADLINE_MS
                )
                page.screenshot(path=str(target))
        finally:
            browser.close()


SHOTS = ("plan-summary.png", "notification.png", "automations-ui.png", "usage.png")


def scratch_env(scratch: Path, hook: str) -> dict[str, str]:
    """The commands' environment: a Prefect home and data root of their own, and each
    department's alert webhook at the receiver."""
    from airnub_core import conventions
    from airnub_platform.testing import SCRATCH_DEPARTMENTS, clean_env

    inherited = clean_env().items()
    return {
        **{k: v for k, v in inherited if not k.startswith(("PREFECT_", "AIRNUB_"))},
        "PREFECT_HOME": str(scratch / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "AIRNUB_DATA_ROOT": str(scratch / "data"),
        "AIRNUB_ALERT_ALLOW_PRIVATE_URLS": "true",  # the receiver is on 127.0.0.1
        **{conventions.alert_webhook_env(d): hook for d in SCRATCH_DEPARTMENTS},
    }


def pull_request_plan(airnub: str, env: dict[str, str], workspace: Path) -> str:
    """Main deployed and run once; then a pull request's commit, and its plan as markdown."""
    for command in SYNC:
        run([airnub, *command], env, workspace)
    run([airnub, "run"], env, workspace)  # every department, once, before the change
    edit_department(workspace)
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@localhost"]
    run([*git, "commit", "-qam", "limits, alert rules, a new source"], env, workspace)
    return run([airnub, "plan", "--base", "HEAD~1", "--format", "markdown"], env, workspace)


def merge_and_fail(airnub: str, env: dict[str, str], workspace: Path) -> None:
    """The change merged and deployed; the other department runs again, this one fails."""
    for command in SYNC:
        run([airnub, *command], env, workspace)
    run([airnub, "run", "dept_scratch_two"], env, workspace)
    run([airnub, "run", EDITED], env, workspace, ok=(1,))  # its new source is not there


def make_all(scratch: Path, staged: Path) -> None:
    """Every screenshot, into ``staged``."""
    from airnub_platform.testing import scratch_workspace

    print("making a scratch workspace with two generated departments ...", flush=True)
    workspace = scratch_workspace(scratch / "workspace")
    airnub = str(workspace / ".venv" / "bin" / "airnub")
    with webhook_receiver("/alerts") as (hook, received):
        env = scratch_env(scratch, hook)
        with prefect_server(workspace, env, scratch / "server.log") as api:
            env["PREFECT_API_URL"] = api
            print(f"prefect server on {api}: deploy, run, plan a change ...", flush=True)
            plan = pull_request_plan(airnub, env, workspace)
            print("merge it, run again, wait for the failure's notification ...", flush=True)
            merge_and_fail(airnub, env, workspace)
            notification = received.get(timeout=NOTIFY_DEADLINE)
            usage = ["usage", "--since", "1d", "--png", str(staged / "usage.png")]
            run([airnub, *usage], env, workspace)
            pages = {
                staged / "plan-summary.png": plan_page(plan),
                staged / "notification.png": notification_page(notification),
            }
            automations = api.removesuffix("/api") + "/automations"
            screenshot_pages(pages, (automations, staged / "automations-ui.png"))


def publish(staged: Path, out: Path) -> list[Path]:
    """Move every screenshot into ``out``, only once all of them were made: a failed run
    leaves the previous set as it was, never half of a new one."""
    missing = [name for name in SHOTS if not (staged / name).is_file()]
    if missing:
        raise RuntimeError(f"not made: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in SHOTS:  # copied beside its target, then renamed over it: whole or not at all
        temporary = out / f".{name}.partial"
        shutil.copyfile(staged / name, temporary)
        temporary.replace(out / name)
    return [out / name for name in SHOTS]


def main() -> int:
    from airnub_platform.testing import unwind_on_stop_signals

    unwind_on_stop_signals()  # Ctrl-C and SIGTERM unwind through the finally blocks
    parser = argparse.ArgumentParser(description="The screenshots of the platform docs page.")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "images")
    out = parser.parse_args().out.resolve()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing (Debian package chromium)", file=sys.stderr)
        return 1
    try:  # an unusable --out fails first, not after minutes of work
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"screenshots: --out {out}: cannot be made: {error.strerror}", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="airnub-screenshots-"))
    staged = scratch / "images"
    try:
        staged.mkdir()
        make_all(scratch, staged)
        made = publish(staged, out)
    except queue.Empty:
        print(f"screenshots: no notification within {NOTIFY_DEADLINE:.0f} s", file=sys.stderr)
        return 1
    except Exception as error:  # a command, the server or the browser: what failed, in short
        said = str(error).strip().splitlines() or [type(error).__name__]
        print(f"screenshots: failed: {said[0]}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for path in made:
        shown = path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path
        print(f"wrote {shown} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
