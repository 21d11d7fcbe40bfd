"""The datasets page in a real browser.

- A small JSONL written here (a broken line and an empty question among good rows) is uploaded
  through the file picker, listed, previewed (the broken line listed under the rows), validated
  (the problems by row number, with exactly the API's texts), measured (the histograms drawn with
  one count per readable row, the empty cell counted), then used in the wizard: the dataset step
  shows that upload selected and the draft holds its path.
- A file over the upload limit (the server started with a 16 KB limit) shows the server's 413
  message and leaves nothing in the uploads folder: just over the limit (the upload service
  refuses it) and far over it (the request size limit refuses it before reading).
- At a phone's width (390 px) a file dropped on the drop zone, with markup in its name, shows the
  name as text without horizontal scrolling; it is renamed inline and deleted after confirm().
- A file with an exact and a near duplicate: both groups shown with their rows, a cleaned copy
  written without them; then a seeded split into two parts and a conversion to alpaca CSV whose
  download has alpaca's columns.

Synchronisation is Playwright's auto-waiting (`expect`) on `body[data-ready]` and on what the page
shows, never sleeps."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import REPO, LiveServer, kill_workers_of, wait_for

pytestmark = pytest.mark.slow

UPLOAD_LIMIT = 16 << 10
STATS_MS = 30_000    # the first statistics load the default model's tokenizer
HOSTILE_NAME = '<img src=x onerror="document.body.dataset.pwned=1">.jsonl'
ROWS = [
    '{"question": "What is 2 + 3?", "answer": "5"}',
    '{"question": "What is 10 - 4?", "answer": "6"}',
    '{"question": "What is 7 + 1?", "answer": ',          # line 3: not JSON
    '{"question": "", "answer": "7"}',                   # line 4: an empty prompt
    '{"question": "What is 3 * 3?", "answer": "9"}',
    '{"question": "What is 12 / 4?", "answer": "3"}',
]
READABLE_ROWS = 5


class SmallLimitServer(LiveServer):
    """`python flask_app.py` with MAX_UPLOAD_BYTES set small (flask_app has no flag for it, so
    its defaults are wrapped before main() runs)."""

    def start(self) -> "SmallLimitServer":
        import os
        import subprocess

        import requests
        launcher = ("import sys, flask_app\n"
                    "defaults = flask_app.default_settings\n"
                    f"flask_app.default_settings = lambda root: {{**defaults(root), "
                    f"'MAX_UPLOAD_BYTES': {UPLOAD_LIMIT}}}\n"
                    "sys.exit(flask_app.main(sys.argv[1:]))")
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", launcher, "--port", str(self.port), "--root",
                 str(self.root)], cwd=REPO, stdout=log, stderr=log, env={**os.environ})

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {(self.root / 'server.log').read_text()}")
            try:
                return requests.get(f"{self.url}/api/system/status", timeout=2).ok
            except requests.ConnectionError:
                return False
        wait_for(answers, 60, "the server to answer")
        return self


@pytest.fixture
def live_server(tmp_path: Path) -> Any:
    server = SmallLimitServer(tmp_path).start()
    yield server
    server.kill(15)
    kill_workers_of(tmp_path)


@pytest.fixture
def small_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "arithmetic questions.jsonl"
    path.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    return path


def open_datasets(page: Page) -> None:
    page.goto("/datasets")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def uploads(server: Any) -> list[dict[str, Any]]:
    return [d for d in server.api("GET", "/api/datasets/list").json()["datasets"]
            if d["source"] == "file"]


def chart_counts(page: Page, canvas_id: str) -> list[int]:
    return page.evaluate(f"() => Chart.getChart('{canvas_id}').data.datasets[0].data")


# ---- upload, preview, validation, statistics, wizard ------------------------------------------
def test_an_upload_is_previewed_validated_measured_and_used_in_the_wizard(
        page: Page, live_server: Any, small_jsonl: Path) -> None:
    open_datasets(page)
    expect(page.locator("#datasets-empty")).to_be_visible()
    page.locator("#upload-file").set_input_files(str(small_jsonl))

    item = page.locator("#dataset-list > li.dataset-item")
    expect(item).to_have_count(1)
    expect(item.locator(".dataset-name")).to_have_text(small_jsonl.name)
    expect(item.locator("[data-role=meta]")).to_contain_text("jsonl")
    [entry] = uploads(live_server)
    expect(item).to_have_attribute("data-id", entry["id"])
    expect(item).to_have_attribute("aria-current", "true")   # the new upload is selected
    expect(page.locator("#upload-status")).to_contain_text(small_jsonl.name)

    # preview: the readable rows of the first page, the broken line listed under them
    expect(page.locator("#dataset-detail")).to_be_visible()
    table = page.locator("#preview-table")
    expect(table.locator("tbody tr")).to_have_count(READABLE_ROWS)
    expect(table.locator("tbody tr").first).to_contain_text("What is 2 + 3?")
    expect(page.locator('#preview-problems li[data-row="3"]')).to_be_visible()
    expect(page.locator("#shape-name")).not_to_be_empty()
    expect(page.locator("#preview-next")).to_be_disabled()

    # validation: the problems by row, exactly as the API reports them
    report = live_server.api("POST", "/api/datasets/validate",
                             json={"id": entry["id"], "format": "auto"}).json()
    rows = page.locator("#validation-problems tbody tr")
    expect(rows).to_have_count(len(report["problems"]))
    assert [p["row"] for p in report["problems"]] == [3, 4]
    for problem, row in zip(report["problems"], rows.all()):
        expect(row).to_have_attribute("data-row", str(problem["row"]))
        expect(row.locator("td").nth(0)).to_have_text(str(problem["row"]))
        expect(row.locator("td").nth(1)).to_have_text(problem["field"] or "–")
        expect(row.locator("td").nth(2)).to_have_text(problem["message"])
    expect(page.locator("#validation-summary")).to_have_attribute("data-invalid",
                                                                  str(report["invalid"]))

    # statistics: counts and both histograms (one count per readable row)
    page.locator("#stats-run").click()
    expect(page.locator("#stats-result")).to_be_visible(timeout=STATS_MS)
    expect(page.locator("#stats-progress")).to_be_hidden()
    expect(page.locator("#stats-rows")).to_have_text(str(READABLE_ROWS))
    expect(page.locator("#stats-broken")).to_have_text("1")
    expect(page.locator("#stats-empty-fields")).to_contain_text("question 1")
    expect(page.locator("#stats-per-epoch")).to_have_text(
        re.compile(r"^[1-9][\d,]* (tokens|characters)$"))
    assert sum(chart_counts(page, "chart-prompt")) == READABLE_ROWS
    assert sum(chart_counts(page, "chart-response")) == READABLE_ROWS
    expect(page.locator("#stats-lengths tbody tr")).to_have_count(2)

    # use in the wizard: the dataset step shows the upload chosen; the draft holds its path
    page.locator("#use-in-wizard").click()
    page.wait_for_url("**/wizard/dataset")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    card = page.locator(f'#uploaded-datasets [data-dataset="{entry["id"]}"]')
    expect(card).to_have_class(re.compile(r"\bselected\b"))
    draft = json.loads(page.evaluate("localStorage.getItem('grpo-studio.draft')"))
    assert draft["dataset"]["source"] == "file"
    assert draft["dataset"]["path"] == entry["path"]


# ---- the upload limit -------------------------------------------------------------------------
@pytest.mark.parametrize("size", [
    UPLOAD_LIMIT + 4096,   # refused by the upload service while it streams the file
    3 << 20,               # refused before the body is read (over the request size limit)
])
def test_a_file_over_the_limit_shows_the_413_message_and_leaves_nothing(
        page: Page, live_server: Any, tmp_path: Path, size: int) -> None:
    big = tmp_path / "big.jsonl"
    line = json.dumps({"question": "x" * 200, "answer": "y"}) + "\n"
    big.write_text(line * (size // len(line) + 1), encoding="utf-8")
    answer = live_server.api("POST", "/api/datasets/upload",
                             files={"file": (big.name, big.read_bytes())})
    assert answer.status_code == 413
    message = answer.json()["error"]

    open_datasets(page)
    page.locator("#upload-file").set_input_files(str(big))
    error = page.locator("#upload-error")
    expect(error).to_have_attribute("data-status", "413")
    expect(error).to_have_text(f"{big.name}: {message}")
    expect(page.locator("#datasets-empty")).to_be_visible()
    assert uploads(live_server) == []
    uploads_dir = live_server.root / "uploads"
    assert not uploads_dir.exists() or not any(uploads_dir.iterdir())


# ---- a phone's width, drag and drop, names as text, rename, delete -----------------------------
def test_at_phone_width_a_dropped_file_is_shown_as_text_renamed_and_deleted(
        page: Page, live_server: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_datasets(page)
    page.evaluate("""([name, text]) => {
        const data = new DataTransfer();
        data.items.add(new File([text], name, { type: "application/json" }));
        document.getElementById("dropzone").dispatchEvent(
            new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }""", [HOSTILE_NAME, "\n".join(ROWS) + "\n"])
    item = page.locator("#dataset-list > li.dataset-item")
    expect(item.locator(".dataset-name")).to_have_text(HOSTILE_NAME)
    expect(page.locator("#validation-problems tbody tr")).to_have_count(2)
    expect(page.locator("#detail-name")).to_have_text(HOSTILE_NAME)
    assert page.locator("body").get_attribute("data-pwned") is None
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    item.locator("[data-action=rename]").click()
    item.locator("input.dataset-rename").fill("sums.jsonl")
    item.locator("input.dataset-rename").press("Enter")
    expect(item.locator(".dataset-name")).to_have_text("sums.jsonl")
    expect(page.locator("#detail-name")).to_have_text("sums.jsonl")
    assert [d["name"] for d in uploads(live_server)] == ["sums.jsonl"]

    page.once("dialog", lambda dialog: dialog.accept())
    item.locator("[data-action=delete]").click()
    expect(item).to_have_count(0)
    expect(page.locator("#datasets-empty")).to_be_visible()
    expect(page.locator("#dataset-detail")).to_be_hidden()
    assert uploads(live_server) == []


# ---- duplicates, split, convert ------------------------------------------------------------------
SENTENCE = "Tom has {n} red apples and gives two of them to his sister Anna, how many are left now?"
DUPLICATED_ROWS = [
    {"question": "What is 2 + 3?", "answer": "5"},
    {"question": "What is 2 + 3?", "answer": "5"},              # row 2: an exact duplicate of row 1
    {"question": SENTENCE.format(n="five"), "answer": "3"},
    {"question": SENTENCE.format(n="seven"), "answer": "3"},   # row 4: nearly row 3
    {"question": "What is 9 - 1?", "answer": "8"},
    {"question": "What is 6 * 7?", "answer": "42"},
]


def test_duplicates_are_grouped_and_removed_then_the_file_is_split_and_converted(
        page: Page, live_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "with duplicates.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DUPLICATED_ROWS), encoding="utf-8")
    open_datasets(page)
    page.locator("#upload-file").set_input_files(str(path))
    expect(page.locator("#validation-summary")).to_have_attribute("data-invalid", "0")

    page.locator("#dedup-threshold").fill("0.5")
    expect(page.locator("#dedup-threshold-value")).to_have_text("0.5")
    page.locator("#dedup-run").click()
    expect(page.locator("#dedup-result")).to_be_visible(timeout=STATS_MS)
    exact = page.locator('#dedup-clusters [data-kind="exact"]')
    expect(exact).to_have_count(1)
    expect(exact.locator("h4")).to_contain_text("1, 2")
    expect(exact.locator(".dedup-example").first).to_have_text(re.compile("What is 2 \\+ 3\\?"))
    near = page.locator('#dedup-clusters [data-kind="near"]')
    expect(near).to_have_count(1)
    expect(near.locator("h4")).to_contain_text("3, 4")
    page.locator("#dedup-write").click()
    expect(page.locator("#dedup-written")).to_contain_text("2 removed")
    expect(page.locator("#dataset-list > li")).to_have_count(2)
    cleaned = [d for d in uploads(live_server) if d.get("derived_from")]
    assert [d["rows"] for d in cleaned] == [4]

    page.locator("#split-validation").fill("0.5")
    page.locator("#split-seed").fill("7")
    page.locator("#split-run").click()
    expect(page.locator("#split-result li")).to_have_count(2)
    expect(page.locator('#split-result li[data-part="train"]')).to_contain_text("3 rows")
    expect(page.locator('#split-result li[data-part="validation"]')).to_contain_text("3 rows")
    expect(page.locator("#dataset-list > li")).to_have_count(4)

    page.locator("#convert-target").select_option("alpaca")
    page.locator("#convert-as").select_option("csv")
    page.locator("#convert-run").click()
    expect(page.locator("#convert-result")).to_be_visible()
    expect(page.locator("#convert-summary")).to_contain_text("6 rows")
    with page.expect_download() as download:
        page.locator("#convert-download").click()
    assert download.value.suggested_filename.endswith(".csv")
    header = Path(download.value.path()).read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[:3] == ["instruction", "input", "output"]
    expect(page.locator("#dataset-list > li")).to_have_count(5)
