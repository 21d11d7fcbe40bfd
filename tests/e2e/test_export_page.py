"""The export page in a real browser.

- A real finished run on the tiny model (trained in this process, served by `python flask_app.py`):
  chosen on /export as an adapter export, followed to done, its verification and files shown, one
  file downloaded under its own name, then deleted from the page and from the API.
- A run fabricated on disk (an empty adapter/ folder and one complete checkpoint) for the fast
  checks: the quantization choices of each format, a run and checkpoint preselected from the URL,
  an API error shown at the field it names, names shown as text, and the empty states.

Synchronisation is Playwright's auto-waiting (`expect`), never sleeps."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from core.config import validate_config
from core.export.request import GGUF_QUANTIZATIONS, LORA_QUANTIZATIONS
from core.files import write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, create_run
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow

EXPORT_MS = 180_000   # a fresh export worker imports torch and PEFT, then loads the adapter back
HOSTILE_NAME = '<img src=x onerror="document.body.dataset.pwned=1">'


# ---- helpers ---------------------------------------------------------------------------------
def open_export(page: Page, query: str = "") -> None:
    page.goto(f"/export{query}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def choose_format(page: Page, fmt: str) -> None:
    page.locator(f'input[name="format"][value="{fmt}"]').check()


def option_values(page: Page, selector: str) -> list[str]:
    return page.locator(f"{selector} option").evaluate_all("options => options.map(o => o.value)")


@pytest.fixture
def trained_run(live_server: Any, tiny_model: Path) -> str:
    """A run of one GRPO step on the tiny model, finished with its adapter/."""
    from core.worker import run_worker
    config = validate_config(tiny_config(tiny_model, training={"max_steps": 1},
                                         output={"sample_every": 0}))
    run = create_run(config, live_server.root / "outputs", run_id="done-run")
    run_worker(run)
    assert run.adapter_dir.is_dir(), (run.path / "worker.log").read_text()
    return run.run_id


@pytest.fixture
def fabricated_run(live_server: Any) -> Any:
    """A completed run with an (empty) adapter/ folder and a complete checkpoint-2: enough for
    the page to offer it; nothing here can really be exported."""
    run = create_run(validate_config(tiny_config(Path("/nonexistent"))),
                     live_server.root / "outputs", run_id="fabricated")
    run.update_state(status="completed", phase="grpo", step=2, total_steps=2, name=HOSTILE_NAME)
    run.adapter_dir.mkdir()
    checkpoint = run.checkpoints_dir("grpo") / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    write_json_atomic(checkpoint / CHECKPOINT_MARKER, {"phase": "grpo", "step": 2})
    return run


# ---- a real export -------------------------------------------------------------------------------
def test_an_adapter_export_is_followed_to_done_downloaded_and_deleted(
        page: Page, live_server: Any, trained_run: str) -> None:
    open_export(page)
    page.locator("#export-run").select_option(trained_run)
    expect(page.locator("#export-checkpoint")).to_have_value("")   # the final result
    choose_format(page, "adapter")
    page.locator("#create-export").click()

    card = page.locator("#export-list > article.export")
    expect(card).to_have_count(1)
    expect(card.locator("[data-role=run]")).to_have_text(trained_run)
    expect(card).to_have_attribute("data-status", "done", timeout=EXPORT_MS)
    expect(card.locator('[data-verified="loads"]')).to_have_text("yes")
    link = card.locator('[data-file="adapter_config.json"] a')
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "adapter_config.json"
    assert b"lora" in Path(download.value.path()).read_bytes().lower()

    page.once("dialog", lambda dialog: dialog.accept())
    card.locator('[data-action="delete"]').click()
    expect(card).to_have_count(0)
    expect(page.locator("#exports-empty")).to_be_visible()
    assert live_server.api("GET", "/api/exports/list").json() == {"exports": []}


# ---- fast checks on a fabricated run -----------------------------------------------------------
def test_gguf_formats_offer_their_quantizations_and_adapter_hides_them(
        page: Page, fabricated_run: Any) -> None:
    open_export(page)
    quantization = page.locator("#quantization-field")
    choose_format(page, "gguf")
    expect(quantization).to_be_visible()
    assert option_values(page, "#export-quantization") == list(GGUF_QUANTIZATIONS)
    expect(page.locator("#export-quantization")).to_have_value("q4_k_m")
    choose_format(page, "gguf_lora")
    assert option_values(page, "#export-quantization") == list(LORA_QUANTIZATIONS)
    expect(page.locator("#export-quantization")).to_have_value("f16")
    choose_format(page, "adapter")
    expect(quantization).to_be_hidden()


def test_the_url_preselects_a_run_and_its_checkpoint(page: Page, fabricated_run: Any) -> None:
    open_export(page, f"?run={fabricated_run.run_id}&checkpoint=checkpoint-2")
    expect(page.locator("#export-run")).to_have_value(fabricated_run.run_id)
    expect(page.locator("#export-checkpoint")).to_have_value("checkpoint-2")
    assert option_values(page, "#export-checkpoint") == ["", "checkpoint-2"]


def test_an_api_error_shows_at_the_field_it_names(page: Page, live_server: Any,
                                                  fabricated_run: Any) -> None:
    open_export(page, f"?run={fabricated_run.run_id}")
    shutil.rmtree(fabricated_run.adapter_dir)   # the final result went away after the page loaded
    choose_format(page, "adapter")
    page.locator("#create-export").click()
    expect(page.locator('[data-error-for="session_id"]')).to_contain_text("no trained result")
    expect(page.locator("#export-list > article.export")).to_have_count(0)
    assert live_server.api("GET", "/api/exports/list").json() == {"exports": []}


def test_a_run_name_with_markup_shows_as_text(page: Page, fabricated_run: Any) -> None:
    open_export(page)
    expect(page.locator("#export-run option").first).to_contain_text(HOSTILE_NAME)
    assert page.locator("body").get_attribute("data-pwned") is None


def test_without_runs_the_page_says_to_train_one_first(page: Page) -> None:
    open_export(page)
    empty = page.locator("#no-sources")
    expect(empty).to_be_visible()
    expect(empty.locator("a")).to_have_attribute("href", "/wizard/model")
    expect(page.locator("#export-form")).to_be_hidden()
    expect(page.locator("#exports-empty")).to_be_visible()
