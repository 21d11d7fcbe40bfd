"""The system monitor in a real browser: the bar on every page, the memory chart of the monitor
page, and the wizard's GPU choice.

- On this machine (no NVIDIA GPU, no driver) the bar says "CPU only" with CPU and RAM figures on
  every page, and the wizard's compute section says "CPU only".
- A live server whose `pynvml` is tests/nvml_stand_in/pynvml.py (first on its PYTHONPATH) stands
  in for a driver with two GPUs, which cannot exist here: the bar shows both, and choosing both
  in the wizard makes the draft a multi-GPU config.

Synchronisation is Playwright's auto-waiting (`expect`), never sleeps."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect

from core.config import validate_config
from core.run_dir import create_run
from tests.conftest import REPO, LiveServer, kill_workers_of, tiny_config
from tests.e2e.conftest import page_on

pytestmark = pytest.mark.slow

PAGES = ["/", "/runs", "/wizard/model", "/wizard/training", "/configs", "/datasets",
         "/rewards/test", "/test", "/export", "/models"]
GB = r"\d+(\.\d)? GB"
CPU_ONLY_BAR = re.compile(rf"^CPU only · CPU \d+ % · RAM {GB} / {GB}$")
UPDATE_MS = 15_000   # system_update comes every 2 s


def wait_ready(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


@pytest.fixture
def cpu_only(live_server: Any) -> None:
    if live_server.api("GET", "/api/system/status").json()["gpus"]:
        pytest.skip("this machine has a GPU: the CPU-only bar cannot be seen")


@pytest.fixture
def two_gpu_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server whose NVML is the stand-in with two GPUs (a driver this machine lacks)."""
    stand_in = str(REPO / "tests" / "nvml_stand_in")
    server = LiveServer(tmp_path, env={"PYTHONPATH": stand_in, "NVML_STAND_IN_GPUS": "2"}).start()
    yield server
    server.kill(15)
    kill_workers_of(tmp_path)


@pytest.fixture
def gpu_page(browser: Any, two_gpu_server: LiveServer, page_errors: list[str]) -> Iterator[Page]:
    yield from page_on(browser, two_gpu_server.url, page_errors)


# ---- CPU only ---------------------------------------------------------------------------------
def test_every_page_shows_cpu_only_with_cpu_and_ram(page: Page, cpu_only: None) -> None:
    for url in PAGES:
        page.goto(url)
        bar = page.locator("header #system-bar")
        expect(bar, f"the system bar on {url}").to_have_text(CPU_ONLY_BAR)
        expect(bar).to_have_attribute("data-gpus", "0")
        expect(bar).to_have_attribute("title", re.compile("training runs on the CPU"))


def test_the_monitor_charts_ram_over_time(page: Page, live_server: Any, cpu_only: None,
                                          screenshots: Path) -> None:
    run = create_run(validate_config(tiny_config(Path("/nonexistent"))),
                     live_server.root / "outputs", run_id="watched")
    run.update_state(status="paused")
    page.goto(f"/runs/{run.run_id}")
    wait_ready(page)
    chart = page.locator("#chart-memory")
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]"))
    expect(page.locator("#memory-note")).to_have_text(re.compile("CPU only"))
    # the pushed system_update adds points while the page is open
    expect(chart).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"),
                                    timeout=UPDATE_MS)
    labels = page.evaluate("Chart.getChart('chart-memory').data.datasets.map(d => d.label)")
    assert labels == ["RAM"]
    page.locator("#memory-chart").screenshot(path=str(screenshots / "monitor-memory.png"))


def test_the_wizard_compute_section_says_cpu_only(page: Page, cpu_only: None) -> None:
    page.goto("/wizard/training")
    wait_ready(page)
    expect(page.locator("#compute-summary")).to_have_text(re.compile("^CPU only"))
    expect(page.locator("#gpu-choices input")).to_have_count(0)


# ---- two stand-in GPUs --------------------------------------------------------------------------
def test_the_bar_shows_each_gpu(gpu_page: Page) -> None:
    gpu_page.goto("/runs")
    bar = gpu_page.locator("#system-bar")
    expect(bar).to_have_attribute("data-gpus", "2")
    expect(bar).to_have_text(re.compile(
        rf"^GPU 0 1\.0 GB / 24\.0 GB 40 % 60 °C · GPU 1 2\.0 GB / 24\.0 GB 41 % 61 °C · "
        rf"CPU \d+ % · RAM {GB} / {GB}$"))
    expect(bar).to_have_attribute("title", re.compile(r"GPU 0: Stand-in GPU 0 · 150 W / 300 W"))


def test_choosing_two_gpus_makes_a_multi_gpu_draft(gpu_page: Page, screenshots: Path) -> None:
    gpu_page.goto("/wizard/training")
    wait_ready(gpu_page)
    choices = gpu_page.locator("#gpu-choices input[type=checkbox]")
    expect(choices).to_have_count(2)
    expect(gpu_page.locator("#gpu-choices")).to_contain_text(
        "GPU 1 · Stand-in GPU 1 · 24 GB (2 GB in use)")
    expect(gpu_page.locator("#compute-summary")).to_have_text(re.compile("No GPU chosen"))

    choices.nth(1).check()
    expect(gpu_page.locator("#compute-summary")).to_have_text("One GPU: GPU 1")
    assert draft(gpu_page)["compute"] == {"gpu_ids": [1], "multi_gpu": False}

    choices.nth(0).check()
    expect(gpu_page.locator("#compute-summary")).to_have_text(re.compile("^2 GPUs: data-parallel"))
    assert draft(gpu_page)["compute"] == {"gpu_ids": [0, 1], "multi_gpu": True}
    gpu_page.locator("#compute").screenshot(path=str(screenshots / "wizard-compute-gpus.png"))

    gpu_page.reload()  # the choice is in the draft, so it survives a reload
    wait_ready(gpu_page)
    expect(gpu_page.locator("#gpu-choices input:checked")).to_have_count(2)


def draft(page: Page) -> dict[str, Any]:
    return json.loads(page.evaluate("localStorage.getItem('grpo-studio.draft')"))
