"""End to end in a real browser: the wizard from model to a started run, the live monitor (stop,
then the history redrawn after a reload), the language menu, saved configs loaded back into the
wizard, and dataset text shown as text. Headless Debian chromium through Playwright; the app runs
as `python flask_app.py` (the `live_server` fixture). The wizard screenshots in docs/screenshots
are written here.

Synchronisation is Playwright's auto-waiting (`expect`, `wait_for_function`): each page sets
`body[data-ready="true"]` once its script has loaded its data and validated the draft."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

WORKER_START_MS = 180_000   # a fresh worker imports torch (~20 s here) before its first step
STOP_MS = 120_000


# ---- helpers ---------------------------------------------------------------------------------
def field(page: Page, path: str) -> Any:
    return page.locator(f'[data-field="{path}"]')


def error_for(page: Page, path: str) -> Any:
    return page.locator(f'[data-error-for="{path}"]')


def wait_ready(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def open_step(page: Page, name: str) -> None:
    page.goto(f"/wizard/{name}")
    wait_ready(page)


def next_step(page: Page, name: str) -> None:
    """Next, which validates the step before it leaves, then the `name` step ready."""
    page.locator("#next").click()
    expect(page).to_have_url(re.compile(rf"/wizard/{name}$"))
    wait_ready(page)


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / name), full_page=True)


def reward_box(page: Page, reward: str) -> Any:
    return page.locator(f'[data-reward="{reward}"] > label > input[type=checkbox]')


def points(page: Page) -> int:
    return int(page.locator("#monitor").get_attribute("data-points") or 0)


def wait_points(page: Page, at_least: int, timeout: float) -> None:
    page.wait_for_function(
        "n => Number(document.getElementById('monitor').dataset.points || 0) >= n",
        arg=at_least, timeout=timeout)


# ---- the whole path: wizard, start, monitor, stop, reload ------------------------------------
def test_wizard_walk_start_stop_and_reload(page: Page, live_server: Any, tiny_model: Path,
                                           screenshots: Path) -> None:
    # model: the default catalog model is chosen until another name is typed
    open_step(page, "model")
    expect(page.locator('[data-model="default"]')).to_have_class(re.compile(r"\bselected\b"))
    expect(field(page, "model.name")).to_have_value("default")
    shoot(page, screenshots, "wizard-1-model.png")
    field(page, "model.name").fill(str(tiny_model))
    expect(page.locator("[data-model].selected")).to_have_count(0)

    # dataset: the bundled arithmetic sample, its rows and the first prompt in ChatML
    next_step(page, "dataset")
    expect(field(page, "dataset.source")).to_have_value("builtin")
    expect(page.locator('[data-dataset="arithmetic"]')).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#preview-table tbody tr").first).to_be_visible()
    expect(page.locator("#format-prompt")).to_contain_text("<|im_start|>")
    shoot(page, screenshots, "wizard-2-dataset.png")

    # training: a run that lasts (stopped by hand below), short completions, no SFT phase
    next_step(page, "training")
    field(page, "training.max_steps").fill("200")
    field(page, "pre_training.enabled").uncheck()
    field(page, "algorithm.max_completion_length").fill("8")
    field(page, "output.logging_steps").fill("1")
    field(page, "output.save_steps").fill("100")
    field(page, "output.sample_every").fill("1")

    # a bad value is reported at its field, and Next stays on the step
    field(page, "training.learning_rate").fill("-1")
    expect(error_for(page, "training.learning_rate")).to_have_text(re.compile(r"\S"))
    expect(page.locator('[data-field-wrap="training.learning_rate"]')).to_have_class(
        re.compile(r"\binvalid\b"))
    page.locator("#next").click()
    expect(page.locator("#step-problems")).to_have_text(re.compile(r"\S"))
    expect(page).to_have_url(re.compile(r"/wizard/training$"))
    field(page, "training.learning_rate").fill("1e-3")
    expect(error_for(page, "training.learning_rate")).to_have_text("")
    expect(page.locator('[data-field-wrap="training.learning_rate"]')).not_to_have_class(
        re.compile(r"\binvalid\b"))
    shoot(page, screenshots, "wizard-3-training.png")

    # rewards: the default config's two
    next_step(page, "rewards")
    expect(reward_box(page, "answer_correct")).to_be_checked()
    expect(reward_box(page, "format_markers")).to_be_checked()
    expect(reward_box(page, "length_band")).not_to_be_checked()
    shoot(page, screenshots, "wizard-4-rewards.png")

    # review: valid, and the draft survives a reload
    next_step(page, "review")
    expect(page.locator("#validation-ok")).to_be_visible()
    expect(page.locator("#validation-problems li")).to_have_count(0)
    # the estimate before launch: the peak by part; time waits for a measurement
    expect(page.locator("#estimate-peak")).to_have_text(re.compile(r"^\d+\.\d\d GB$"))
    expect(page.locator('#estimate-parts tr[data-part="weights"]')).to_be_visible()
    expect(page.locator("#estimate-no-time")).to_be_visible()
    shoot(page, screenshots, "wizard-5-review.png")
    page.reload()
    wait_ready(page)
    expect(page.locator("#validation-ok")).to_be_visible()
    config = json.loads(page.locator("#config-json").text_content() or "{}")
    assert config["model"]["name"] == str(tiny_model)
    assert config["training"]["max_steps"] == 200
    assert config["training"]["learning_rate"] == pytest.approx(1e-3)
    assert config["pre_training"]["enabled"] is False
    assert config["algorithm"]["max_completion_length"] == 8
    assert [r["name"] for r in config["rewards"]] == ["answer_correct", "format_markers"]
    expect(page.locator("#config-json")).to_contain_text('"max_steps": 200')

    # start: the monitor of the new run follows it live
    page.locator("#start-training").click()
    expect(page).to_have_url(re.compile(r"/runs/[^/]+$"), timeout=30_000)
    run_id = page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.locator("#monitor")).to_have_attribute("data-run-id", run_id)
    wait_points(page, 2, WORKER_START_MS)
    expect(page.locator("#stat-step")).to_contain_text("/ 200")
    expect(page.locator("#chart-reward")).to_be_visible()
    drawn = page.evaluate("() => Chart.getChart('chart-reward').data.datasets[0].data"
                          ".filter(v => typeof v === 'number').length")
    assert drawn >= 2, "the reward chart has no points"
    expect(page.locator("#rollout-groups > article.rollout").first).to_be_visible(timeout=60_000)
    expect(page.locator("#log-tail")).not_to_be_empty()
    shoot(page, screenshots, "monitor.png")

    # stop: the run ends as cancelled
    expect(page.locator("#stop")).to_be_enabled()
    page.locator("#stop").click()
    expect(page.locator("#monitor")).to_have_attribute("data-status", "cancelled", timeout=STOP_MS)
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#resume")).to_be_enabled()
    assert live_server.api("GET", f"/api/training/{run_id}").json()["status"] == "cancelled"

    # reload: the whole history is drawn again from /metrics
    seen = points(page)
    assert seen >= 2
    page.reload()
    wait_ready(page)
    wait_points(page, seen, 10_000)
    expect(page.locator("#monitor")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#rollout-groups > article.rollout").first).to_be_visible()


# ---- language -----------------------------------------------------------------------------
def choose_language(page: Page, code: str) -> None:
    page.locator("summary#language-menu").click()
    page.locator(f"a[data-language={code}]").click()
    expect(page.locator("html")).to_have_attribute("lang", code)
    wait_ready(page)


def test_language_switch_to_french_is_remembered(page: Page, live_server: Any,
                                                 screenshots: Path) -> None:
    no_gpu = not live_server.api("GET", "/api/system/status").json().get("gpus")
    page.goto("/runs")
    wait_ready(page)
    expect(page.locator("header nav")).to_contain_text("Runs")
    choose_language(page, "fr")
    expect(page).to_have_url(re.compile(r"/runs$"))
    expect(page.locator("header nav")).to_contain_text("Exécutions")
    expect(page.locator("header nav")).to_contain_text("Nouvelle exécution")

    # another page, loaded afresh: the cookie keeps French, in the template and in JS texts
    open_step(page, "model")
    expect(page.locator("#next")).to_have_text("Suivant")
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page.locator('[data-model="default"] .badge')).to_have_text("hors ligne")
    if no_gpu:
        expect(page.locator("#system-bar")).to_contain_text("CPU uniquement")
    shoot(page, screenshots, "wizard-1-model-fr.png")

    choose_language(page, "en")
    expect(page).to_have_url(re.compile(r"/wizard/model$"))
    expect(page.locator("#next")).to_have_text("Next")
    expect(page.locator("header nav")).to_contain_text("Runs")
    expect(page.locator('[data-model="default"] .badge')).to_have_text("offline")
    if no_gpu:
        expect(page.locator("#system-bar")).to_contain_text("CPU only")


# ---- saved configs --------------------------------------------------------------------------
def test_saved_config_loads_into_wizard(page: Page, live_server: Any, tiny_model: Path) -> None:
    open_step(page, "model")
    field(page, "model.name").fill(str(tiny_model))
    open_step(page, "review")
    page.locator("#save-name").fill("my config")
    page.locator("#save-config").click()
    expect(page.locator("#toast")).to_contain_text("my config")
    saved = live_server.api("GET", "/api/configs/list").json()["saved"]
    assert [entry["name"] for entry in saved] == ["my config"]

    # back to the defaults, so that only loading the saved config brings the model back
    page.locator("#reset-draft").click()  # reloads the page
    expect(page.locator("#config-json")).to_contain_text('"name": "default"')
    expect(page.locator("#config-json")).not_to_contain_text(str(tiny_model))

    page.goto("/configs")
    wait_ready(page)
    row = page.locator('#saved-configs tr[data-config="my config"]')
    expect(row).to_contain_text(str(tiny_model))
    row.get_by_role("button", name="Load into the wizard").click()
    expect(page).to_have_url(re.compile(r"/wizard/model$"))
    wait_ready(page)
    expect(field(page, "model.name")).to_have_value(str(tiny_model))


# ---- untrusted data -------------------------------------------------------------------------
XSS_QUESTION = ('<img src=x onerror="window.__xss=1"> What is 2 + 2? '
                "<script>window.__xss=1</script>")


def test_dataset_row_with_script_shows_as_text(page: Page, live_server: Any,
                                               tmp_path: Path) -> None:
    upload = tmp_path / "hostile.jsonl"
    upload.write_text(json.dumps({"question": XSS_QUESTION, "answer": "4"}) + "\n"
                      + json.dumps({"question": "What is 1 + 1?", "answer": "2"}) + "\n",
                      encoding="utf-8")
    open_step(page, "dataset")
    field(page, "dataset.source").select_option("file")
    expect(page.locator("#upload")).to_be_visible()
    # the sample's name is no file: the preview says so (and is done before the upload starts)
    expect(page.locator("#preview-error")).to_have_text(re.compile(r"\S"))

    page.locator("#upload").set_input_files(str(upload))
    expect(page.locator("#upload-status")).to_contain_text("hostile.jsonl")
    cell = page.locator("#preview-table td", has_text="What is 2 + 2?")
    expect(cell).to_have_text(XSS_QUESTION)
    expect(page.locator("#format-prompt")).to_contain_text(XSS_QUESTION)
    expect(page.locator("#preview-table img, #preview-table script")).to_have_count(0)
    expect(page.locator("#format-prompt img, #format-prompt script")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"
