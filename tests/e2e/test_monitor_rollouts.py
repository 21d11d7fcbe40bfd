"""The run monitor's reward alerts and rollout viewer in a real browser.

- A real GRPO run on the tiny model whose only reward scores every completion 1.0: the trainer
  gets no learning signal, the "no_signal" alert reaches the panel live with its advice, the
  rollout viewer follows the run's samples live, then filters them by a step and searches them.
- A finished run fabricated on disk (events written with RunDir.append_event) for the fast checks:
  paging, step filter, search, the best generation, long texts folded, data shown as text, and
  alerts newest first, each (kind, reward, step) once.

Synchronisation is Playwright's auto-waiting and `wait_for` with deadlines, never sleeps."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.config import validate_config
from core.run_dir import create_run
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow

WORKER_START_MS = 180_000   # a fresh worker imports torch before its first step
RUN_MS = 300_000            # worker start plus 14 tiny GRPO steps on a busy 2-core machine
CONSTANT_REWARD = [{"name": "length_band", "params": {"min_length": 0, "max_length": 1_000_000}}]
PAGE_SIZE = 10              # groups a page of the viewer shows (static/js/rollouts.js)


# ---- helpers ---------------------------------------------------------------------------------
def open_monitor(page: Page, run_id: str) -> None:
    page.goto(f"/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def groups(page: Page) -> Any:
    return page.locator("#rollout-groups > article.rollout")


def expect_viewer(page: Page, total: int, shown: int, timeout: float = 20_000) -> None:
    viewer = page.locator("#rollouts")
    expect(viewer).to_have_attribute("data-total", str(total), timeout=timeout)
    expect(viewer).to_have_attribute("data-shown", str(shown), timeout=timeout)
    expect(groups(page)).to_have_count(shown)


def samples_api(server: Any, run_id: str, **query: Any) -> dict[str, Any]:
    return server.api("GET", f"/api/training/{run_id}/samples", params=query).json()


# ---- a real run with a constant reward --------------------------------------------------------
def test_constant_reward_run_alerts_no_signal_and_shows_its_rollouts(
        page: Page, live_server: Any, tiny_model: Path) -> None:
    config = {**tiny_config(tiny_model, training={"max_steps": 14}, output={"sample_every": 1}),
              "rewards": CONSTANT_REWARD}
    started = live_server.api("POST", "/api/training/start", json={"config": config})
    assert started.status_code == 202, started.text
    run_id = started.json()["session_id"]
    open_monitor(page, run_id)

    # live: groups arrive while the run trains, the alert after ten steps without signal
    expect(groups(page).first).to_be_visible(timeout=WORKER_START_MS)
    alert = page.locator('#alerts li[data-kind="no_signal"]')
    expect(alert).to_be_visible(timeout=RUN_MS)
    expect(alert.locator(".alert-message")).to_have_text(re.compile(r"\S"))
    expect(alert.locator(".alert-advice")).to_have_text(re.compile(r"\S"))
    expect(page.locator("#alerts-empty")).to_be_hidden()
    expect(page.locator("#monitor")).to_have_attribute("data-status", "completed", timeout=RUN_MS)

    # every group logged live is counted once, as the server counts them
    history = samples_api(live_server, run_id, limit=500)
    assert len(history["steps"]) >= 2, history["steps"]
    expect_viewer(page, history["total"], min(history["total"], PAGE_SIZE))
    alerts = live_server.api("GET", f"/api/training/{run_id}/alerts").json()["alerts"]
    assert "no_signal" in {a["kind"] for a in alerts}
    unique = {(a["kind"], a.get("reward"), a["step"]) for a in alerts}
    expect(page.locator("#alerts")).to_have_attribute("data-count", str(len(unique)))
    # a constant reward leaves no generation better than another
    expect(page.locator("#rollout-groups tr.best")).to_have_count(0)

    # step filter: only that step's groups
    step = history["steps"][len(history["steps"]) // 2]
    at_step = samples_api(live_server, run_id, step=step, limit=500)["total"]
    page.locator("#rollout-step").select_option(str(step))
    expect_viewer(page, at_step, min(at_step, PAGE_SIZE))
    for group in groups(page).all():
        expect(group).to_have_attribute("data-step", str(step))
    page.locator("#rollout-step").select_option("")
    expect_viewer(page, history["total"], min(history["total"], PAGE_SIZE))

    # search, in any case: the newest group's reference (its worked answer), as the server finds it
    newest = history["samples"][0]
    needle = (newest["reference"] or newest["prompt"]).strip().splitlines()[0][:40]
    found = samples_api(live_server, run_id, q=needle.upper(), limit=500)["total"]
    assert found >= 1
    page.locator("#rollout-search").fill(needle.upper())
    expect_viewer(page, found, min(found, PAGE_SIZE))
    expect(groups(page).first).to_contain_text(re.compile(re.escape(needle), re.I))

    # a reload shows each alert once again
    open_monitor(page, run_id)
    expect(page.locator("#alerts")).to_have_attribute("data-count", str(len(unique)))


# ---- a finished run fabricated on disk --------------------------------------------------------
LONG_COMPLETION = "\n".join(f"line {i} of a long answer" for i in range(40))
HOSTILE = '<img src=x onerror="window.__xss=1"> 5 + 5 <script>window.__xss=1</script>'
NO_SIGNAL = {"kind": "no_signal", "reward": None, "value": 1.0,
             "message": "No learning signal.", "advice": "Make the reward vary."}
ALERTS = [  # oldest first, as the run wrote them; the last repeats (kind, reward, step): shown once
    {**NO_SIGNAL, "step": 10},
    {"step": 12, "kind": "reward_missing", "reward": "answer_correct", "value": None,
     "message": "answer_correct returned no score.", "advice": "Check the reference column."},
    {**NO_SIGNAL, "step": 12},
    {**NO_SIGNAL, "step": 12},
]


def sample_event(step: int, group: int) -> dict[str, Any]:
    prompt = f"Question {step}.{group}: what is {step} + {group}?"
    completions = [f"{step + group}", f"maybe {step + group + 1}", "no idea"]
    if (step, group) == (3, 1):
        completions[1] = LONG_COMPLETION
    if (step, group) == (5, 0):
        prompt = HOSTILE
    return {"phase": "grpo", "step": step, "prompt": prompt, "completions": completions,
            "scores": {"answer_correct": [1.0, 0.0, None], "format_markers": [0.5, 0.5, 0.0]},
            "total": [1.5, 0.5, 0.0], "reference": str(step + group)}


@pytest.fixture
def finished_run(live_server: Any) -> str:
    """A completed run with 2 groups at each of steps 1..12 and the ALERTS."""
    config = validate_config(tiny_config(Path("/nonexistent")))
    run = create_run(config, live_server.root / "outputs", run_id="fabricated")
    run.update_state(status="completed", phase="grpo", step=12, total_steps=12)
    for step in range(1, 13):
        for group in range(2):
            run.append_event("sample", **sample_event(step, group))
    for alert in ALERTS:
        run.append_event("alert", phase="grpo", **alert)
    return run.run_id


def test_rollout_viewer_pages_filters_and_searches(page: Page, finished_run: str) -> None:
    open_monitor(page, finished_run)
    expect_viewer(page, 24, PAGE_SIZE)
    expect(groups(page).first).to_contain_text("Question 12.1")   # newest first
    expect(page.locator("#rollout-newer")).to_be_disabled()

    page.locator("#rollout-older").click()
    expect(page.locator("#rollouts")).to_have_attribute("data-offset", "10")
    expect(groups(page).first).to_contain_text("Question 7.1")
    page.locator("#rollout-older").click()
    expect_viewer(page, 24, 4)
    expect(page.locator("#rollout-older")).to_be_disabled()
    expect(page.locator("#rollout-range")).to_have_text("21–24 / 24")
    page.locator("#rollout-newer").click()
    expect(page.locator("#rollouts")).to_have_attribute("data-offset", "10")

    # every step with samples can be chosen; a step starts again from the first page
    expect(page.locator("#rollout-step option")).to_have_count(13)   # "All steps" + 12
    page.locator("#rollout-step").select_option("7")
    expect_viewer(page, 2, 2)
    expect(page.locator("#rollouts")).to_have_attribute("data-offset", "0")
    expect(groups(page).nth(0)).to_contain_text("Question 7.1")
    expect(groups(page).nth(1)).to_contain_text("Question 7.0")

    # search (case-insensitive, in prompts, completions and references) within the step
    page.locator("#rollout-search").fill("QUESTION 7.0")
    expect_viewer(page, 1, 1)
    page.locator("#rollout-search").fill("nothing like this")
    expect_viewer(page, 0, 0)
    expect(page.locator("#rollouts-empty")).to_be_visible()
    page.locator("#rollout-step").select_option("")
    page.locator("#rollout-search").fill("line 39 of a long")
    expect_viewer(page, 1, 1)
    expect(groups(page).first).to_have_attribute("data-step", "3")


def test_a_group_shows_every_generation_its_scores_and_the_best(page: Page,
                                                               finished_run: str) -> None:
    open_monitor(page, finished_run)
    page.locator("#rollout-step").select_option("3")
    group = groups(page).filter(has_text="Question 3.1")
    expect(group).to_have_count(1)
    expect(group.locator(".reference")).to_have_text("4")
    expect(group.locator("thead th")).to_have_text(
        ["#", "Completion", "answer_correct", "format_markers", "Total"])
    rows = group.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_class(re.compile(r"\bbest\b"))
    expect(group.locator("tr.best")).to_have_count(1)
    expect(rows.nth(0).locator("td.total")).to_have_text("1.5")
    expect(rows.nth(2).locator("td.num").first).to_have_text("–")   # no score (None)

    # a long completion is folded until asked for
    long_text = rows.nth(1).locator(".rollout-text")
    expect(long_text).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(long_text).to_have_text(LONG_COMPLETION)
    rows.nth(1).get_by_role("button", name="Show all").click()
    expect(long_text).not_to_have_class(re.compile(r"\bcollapsed\b"))
    expect(rows.nth(1).get_by_role("button", name="Show less")).to_be_visible()


def test_sample_text_with_markup_shows_as_text(page: Page, finished_run: str) -> None:
    open_monitor(page, finished_run)
    page.locator("#rollout-search").fill("onerror")
    expect_viewer(page, 1, 1)
    expect(groups(page).first.locator(".prompt")).to_have_text(HOSTILE)
    expect(page.locator("#rollouts img, #rollouts script")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_alerts_show_newest_first_each_once_with_advice(page: Page, finished_run: str) -> None:
    open_monitor(page, finished_run)
    panel = page.locator("#alerts")
    expect(panel).to_have_attribute("data-count", "3")
    items = panel.locator("li.alert")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_have_attribute("data-kind", "no_signal")
    expect(items.nth(0)).to_have_attribute("data-step", "12")
    expect(items.nth(1)).to_have_attribute("data-kind", "reward_missing")
    expect(items.nth(1)).to_have_class(re.compile(r"\balert-error\b"))
    expect(items.nth(1)).to_contain_text("answer_correct returned no score.")
    expect(items.nth(1).locator(".alert-advice")).to_contain_text("Check the reference column.")
    expect(items.nth(2)).to_have_attribute("data-step", "10")
    expect(page.locator("#alerts-empty")).to_be_hidden()


def test_a_run_without_alerts_says_so(page: Page, live_server: Any) -> None:
    config = validate_config(tiny_config(Path("/nonexistent")))
    run = create_run(config, live_server.root / "outputs", run_id="quiet")
    run.update_state(status="completed")
    open_monitor(page, run.run_id)
    expect(page.locator("#alerts")).to_have_attribute("data-count", "0")
    expect(page.locator("#alerts-empty")).to_be_visible()
    expect(page.locator("#rollouts-empty")).to_be_visible()
    expect(page.locator("#rollouts")).to_have_attribute("data-total", "0")
