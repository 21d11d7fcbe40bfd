"""Data with markup in a real browser: a dataset row holding `<script>` and an `onerror` image
shows as text in the datasets page's preview, and the same markup arriving over Socket.IO (a log
line and a rollout sample of a running run) shows as text on the monitor; none of it runs.

The running run's worker is a stand-in process found by the server at start (its command line
names core.worker and the run, as a real worker's does), so the test writes the lines the server
then pushes; no model is loaded. Synchronisation is Playwright's auto-waiting, never sleeps."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.config import validate_config
from core.run_dir import create_run
from tests.conftest import LiveServer, kill_workers_of, tiny_config
from tests.e2e.conftest import browser, page, page_errors  # noqa: F401  (browser fixtures)

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1"><script>' \
          'document.body.dataset.pwned=1</script>'


@pytest.fixture
def running_run(tmp_path: Path) -> Any:
    """A run `running` under a stand-in worker, created before the server starts."""
    config = validate_config(tiny_config(Path("/nonexistent")))
    run = create_run(config, tmp_path / "outputs", run_id="hostile-run")
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                                 "core.worker", str(run.path)], start_new_session=True)
    run.update_state(status="running", phase="grpo", pid=stand_in.pid, step=1, total_steps=9)
    yield run
    stand_in.kill()
    stand_in.wait()


@pytest.fixture
def live_server(tmp_path: Path, running_run: Any) -> Any:
    server = LiveServer(tmp_path).start()
    yield server
    server.kill(15)
    kill_workers_of(tmp_path)


def test_a_dataset_row_with_markup_shows_as_text_in_the_preview(page: Page, live_server: Any,
                                                                tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"question": HOSTILE, "answer": "2"}) + "\n", encoding="utf-8")
    page.goto("/datasets")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.set_input_files("#upload-file", str(rows))
    expect(page.locator("#preview-table")).to_contain_text(HOSTILE)
    assert page.locator("body").get_attribute("data-pwned") is None
    assert page.locator("#preview-table img, #preview-table script").count() == 0


def test_socket_payloads_with_markup_show_as_text_on_the_monitor(page: Page, live_server: Any,
                                                                 running_run: Any) -> None:
    page.goto(f"/runs/{running_run.run_id}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    with running_run.log_path.open("a", encoding="utf-8") as log:
        log.write(HOSTILE + "\n")
    running_run.append_event("sample", phase="grpo", step=1, prompt=HOSTILE,
                             completions=[HOSTILE], reference="2",
                             scores={"answer_correct": [0.0]}, total=[0.0])
    expect(page.locator("#log-tail")).to_contain_text(HOSTILE)
    expect(page.locator("#rollout-groups .prompt").first).to_have_text(HOSTILE)
    assert page.locator("body").get_attribute("data-pwned") is None
    assert page.locator("#log-tail img, #rollout-groups img, #rollout-groups script").count() == 0
