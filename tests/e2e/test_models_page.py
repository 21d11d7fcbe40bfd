"""The models page in a real browser: a model copied into the cache is listed with its size, a
download that cannot reach the hub says so at the model id field (so does an id that is not one),
and Delete (after the confirmation) removes the model's row and folder.

The server runs over its own model cache ($GRPO_STUDIO_CACHE in tmp_path) and a hub endpoint
nobody listens on (HF_ENDPOINT on a closed local port: refused like a machine without network).
Synchronisation is Playwright's auto-waiting: the page sets `body[data-ready="true"]` once it has
listed the cache."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, closed_port_url, kill_workers_of

pytestmark = pytest.mark.slow

DOWNLOAD_MS = 30_000  # a download starts a child process; offline it ends within seconds


@pytest.fixture
def model_cache_dir(tmp_path: Path, tiny_model: Path) -> Path:
    """The server's model cache, holding the tiny model as if copied in by hand as acme/tiny."""
    cache = tmp_path / "model-cache"
    shutil.copytree(tiny_model, cache / "models" / "acme--tiny")
    return cache


@pytest.fixture
def live_server(tmp_path: Path, model_cache_dir: Path) -> Any:
    nowhere = closed_port_url()
    root = tmp_path / "root"
    root.mkdir()
    server = LiveServer(root, env={"GRPO_STUDIO_CACHE": str(model_cache_dir),
                                   "HF_ENDPOINT": nowhere}).start()
    yield server
    server.kill(15)
    kill_workers_of(root)


def human_size(size: int) -> str:
    """What the page shows (static/js/models.js formatBytes)."""
    value, unit = float(size), 0
    while value >= 1024 and unit < 4:
        value, unit = value / 1024, unit + 1
    return f"{value:.1f} {['B', 'KB', 'MB', 'GB', 'TB'][unit]}" if unit else f"{size} B"


def open_page(page: Page) -> None:
    page.goto("/models")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_a_cached_model_is_listed_with_its_size(page: Page, model_cache_dir: Path) -> None:
    open_page(page)
    folder = model_cache_dir / "models" / "acme--tiny"
    row = page.locator('#cached-models tr[data-name="acme--tiny"]')
    expect(row.locator("td").nth(1)).to_have_text("acme/tiny")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    expect(row.locator("td.size")).to_have_text(human_size(size))


def test_a_download_without_the_hub_says_so_at_the_field(page: Page) -> None:
    open_page(page)
    page.fill("#model-id", "HuggingFaceTB/SmolLM2-360M-Instruct")
    page.click("#download-button")
    error = page.locator('[data-error-for="model_id"]')
    expect(error).to_contain_text("the Hugging Face hub cannot be reached", timeout=DOWNLOAD_MS)
    expect(page.locator(".model-download")).to_have_attribute("data-status", "failed")


def test_an_id_that_is_not_a_hub_id_is_refused_at_the_field(page: Page) -> None:
    open_page(page)
    page.fill("#model-id", "../../etc/passwd")
    page.click("#download-button")
    expect(page.locator('[data-error-for="model_id"]')).to_contain_text("not a hub model id")
    expect(page.locator(".model-download")).to_have_count(0)


def test_delete_removes_the_row_and_the_folder(page: Page, model_cache_dir: Path) -> None:
    open_page(page)
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.locator('#cached-models tr[data-name="acme--tiny"] button').click()
    expect(page.locator('#cached-models tr[data-name="acme--tiny"]')).to_have_count(0)
    assert not (model_cache_dir / "models" / "acme--tiny").exists()
    assert questions and "acme--tiny" in questions[0]


def test_a_cached_model_opens_in_the_wizard_and_the_testing_page(page: Page) -> None:
    open_page(page)
    row = page.locator('#cached-models tr[data-name="acme--tiny"]')
    row.get_by_role("link", name="Train with this").click()
    page.wait_for_url("**/wizard/model")
    assert page.evaluate("JSON.parse(localStorage.getItem('grpo-studio.draft')).model.name") \
        == "acme/tiny"
    open_page(page)
    page.locator('#cached-models tr[data-name="acme--tiny"]').get_by_role(
        "link", name="Test").click()
    page.wait_for_url("**/test?model=acme%2Ftiny")
    expect(page.locator("#chat-model")).to_have_value("model:acme/tiny")
