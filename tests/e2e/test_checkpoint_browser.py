"""The monitor page's checkpoint browser in a real browser, on a paused run fabricated on disk
(three complete GRPO checkpoints with rewards 0.2, 0.7 and 0.5, and an incomplete one): the list
shows the complete ones newest first with step and metrics, the best by mean reward is marked,
each opens the testing and export pages at itself, Delete removes one (after a confirmation), and
Resume from here goes back to one (the later checkpoints of its phase deleted).

Synchronisation is Playwright's auto-waiting (`expect`), never sleeps."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.config import validate_config
from core.files import write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, RunDir, create_run
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow

REWARDS = {2: 0.2, 4: 0.7, 6: 0.5}


@pytest.fixture
def paused_run(live_server: Any) -> RunDir:
    run = create_run(validate_config(tiny_config(Path("/nonexistent"))),
                     live_server.root / "outputs", run_id="paused-run")
    run.update_state(status="paused", phase="grpo", step=6, total_steps=10)
    for step, reward in REWARDS.items():
        folder = run.checkpoints_dir("grpo") / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        write_json_atomic(folder / CHECKPOINT_MARKER, {
            "step": step, "phase": "grpo", "metrics": {"reward": reward, "loss": step / 100}})
    (run.checkpoints_dir("grpo") / "checkpoint-8").mkdir()  # its save never finished
    return run


def open_monitor(page: Page, run_id: str) -> None:
    page.goto(f"/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def rows(page: Page) -> Any:
    return page.locator("#checkpoints tbody tr")


def row(page: Page, name: str) -> Any:
    return page.locator(f'#checkpoints tr[data-checkpoint="{name}"]')


def test_the_list_marks_the_best_and_links_to_testing_and_export(
        page: Page, paused_run: RunDir, screenshots: Path) -> None:
    open_monitor(page, paused_run.run_id)
    expect(rows(page)).to_have_count(3)
    expect(page.locator("#checkpoints-empty")).to_be_hidden()
    names = rows(page).evaluate_all("rows => rows.map(r => r.dataset.checkpoint)")
    assert names == ["checkpoint-6", "checkpoint-4", "checkpoint-2"]  # newest first
    best = page.locator('#checkpoints tr[data-best="true"]')
    expect(best).to_have_count(1)
    expect(best).to_have_attribute("data-checkpoint", "checkpoint-4")
    expect(best).to_contain_text("best reward")
    expect(row(page, "checkpoint-4")).to_contain_text("0.7")
    query = f"run={paused_run.run_id}&checkpoint=checkpoint-4"
    # the testing page gets the path, which tells a pre-training checkpoint-4 from GRPO's
    expect(row(page, "checkpoint-4").locator('[data-action="test"]')).to_have_attribute(
        "href", f"/test?run={paused_run.run_id}&checkpoint=checkpoints%2Fcheckpoint-4")
    expect(row(page, "checkpoint-4").locator('[data-action="export"]')).to_have_attribute(
        "href", f"/export?{query}")
    page.locator("#checkpoints").screenshot(path=str(screenshots / "monitor-checkpoints.png"))

    row(page, "checkpoint-4").locator('[data-action="export"]').click()
    expect(page).to_have_url(re.compile(r"/export\?"))
    expect(page.locator("#export-checkpoint")).to_have_value("checkpoint-4")


def test_delete_removes_a_checkpoint_after_confirmation(
        page: Page, paused_run: RunDir) -> None:
    open_monitor(page, paused_run.run_id)
    expect(rows(page)).to_have_count(3)

    page.once("dialog", lambda dialog: dialog.dismiss())  # asked, and said no
    row(page, "checkpoint-2").locator('[data-action="delete"]').click()
    expect(rows(page)).to_have_count(3)
    assert (paused_run.checkpoints_dir("grpo") / "checkpoint-2").is_dir()

    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "checkpoint-2").locator('[data-action="delete"]').click()
    expect(rows(page)).to_have_count(2)
    expect(row(page, "checkpoint-2")).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("checkpoint-2")
    assert not (paused_run.checkpoints_dir("grpo") / "checkpoint-2").exists()

    # deleting the best one moves the mark to the next best
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "checkpoint-4").locator('[data-action="delete"]').click()
    expect(rows(page)).to_have_count(1)
    expect(page.locator('#checkpoints tr[data-best="true"]')).to_have_attribute(
        "data-checkpoint", "checkpoint-6")


def test_resume_from_a_checkpoint_deletes_the_later_ones(
        page: Page, live_server: Any, paused_run: RunDir) -> None:
    open_monitor(page, paused_run.run_id)
    expect(rows(page)).to_have_count(3)
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()
    page.once("dialog", answer)
    row(page, "checkpoint-2").locator('[data-action="resume"]').click()
    expect(rows(page)).to_have_count(1)
    assert "checkpoint-4, checkpoint-6" in questions[0]
    assert paused_run.newest_checkpoint("grpo").name == "checkpoint-2"
    # the run was queued again (its worker then fails on the fabricated model; not checked here)
    status = live_server.api("GET", f"/api/training/{paused_run.run_id}").json()["status"]
    assert status != "paused"


def test_a_running_run_cannot_delete_or_resume(page: Page, paused_run: RunDir) -> None:
    paused_run.update_state(status="running")
    open_monitor(page, paused_run.run_id)
    expect(rows(page)).to_have_count(3)
    expect(page.locator('#checkpoints [data-action="delete"]:disabled')).to_have_count(3)
    expect(page.locator('#checkpoints [data-action="resume"]:disabled')).to_have_count(3)
