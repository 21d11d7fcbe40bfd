"""The datasets page in a real browser.

- A small JSONL written here (a broken line and an empty question among good rows) is uploaded
  through the file picker, listed, previewed (the broken line listed under the rows), validated
  (the problems by row number, with exactly the API's texts), measured (the histograms drawn with
  one count per readable row, the empty cell counted), then used in the wizard: the dataset step
  shows that upload selected and the draft holds its path.
- A file over the upload limit (the server started with a 1 MB limit) shows the server's 413
  message and leaves nothing in the uploads folder: just over the limit (the upload service
  refuses it) and far over it (the request size limit refuses it before reading).
- At a phone's width (390 px) a file dropped on the drop zone, with markup in its name, shows the
  name as text without horizontal scrolling; it is renamed inline and deleted after confirm().
- A file with an exact and a near duplicate: both groups shown with their rows, a cleaned copy
  written without them; then a seeded split into two parts and a conversion to alpaca CSV whose
  download has alpaca's columns.
- Statistics with a wizard draft whose model is not on this machine count with the default
  model's tokenizer and say so, naming the draft's model.
- Public datasets: the seven catalog entries are listed as the API lists them; with the server's
  hub on a closed port (HF_ENDPOINT: refused, like a machine without network) a Download shows
  the API's "hub cannot be reached" error on that entry; through the local hub stand-in
  (tests/hub_dataset_stand_in.py, serving SQuAD v2's Parquet conversion) the progress bar reaches
  done and the download is a new upload in the list.

Synchronisation is Playwright's auto-waiting (`expect`) on `body[data-ready]` and on what the page
shows, never sleeps."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, closed_port_url, kill_workers_of
from tests.hub_dataset_stand_in import dataset_stand_in, parquet_repo

pytestmark = pytest.mark.slow

UPLOAD_LIMIT = 1 << 20  # the server runs with GRPO_STUDIO_MAX_UPLOAD_MB=1
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
DOWNLOAD_MS = 60_000  # a catalog download starts a child process; offline it ends within seconds
CATALOG_ROWS = Path(__file__).resolve().parent.parent / "data" / "datasets" / "catalog"


@pytest.fixture
def hub_env(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The server's hub: the default; "offline" (a closed local port); or "stand-in" (SQuAD v2's
    Parquet conversion, 3 rows in 2 shards, served locally). Chosen with indirect parametrize."""
    kind = getattr(request, "param", None)
    if kind == "offline":
        yield {"HF_ENDPOINT": closed_port_url()}
    elif kind == "stand-in":
        repo = parquet_repo(tmp_path / "hub-repo", CATALOG_ROWS / "squad_v2.jsonl", "squad_v2",
                            "train", [2, 1])
        hub = dataset_stand_in({"rajpurkar/squad_v2": repo})
        yield {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
        hub.close()
    else:
        yield {}


@pytest.fixture
def live_server(tmp_path: Path, hub_env: dict[str, str]) -> Any:
    server = LiveServer(tmp_path, env={"GRPO_STUDIO_MAX_UPLOAD_MB": "1", **hub_env}).start()
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
    expect(page.locator("#split-result li")).to_have_count(3)  # train, validation, use them
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

    # the parts in the wizard: train on one, evaluate on the other (the fraction set to 0)
    parts = {d["name"]: d for d in uploads(live_server) if d["name"].endswith(".jsonl")}
    page.locator("#split-use").click()
    page.wait_for_url("**/wizard/dataset")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    validation = next(d for name, d in parts.items() if "(validation)" in name)
    train = next(d for name, d in parts.items() if "(train)" in name)
    expect(page.locator('[data-field="dataset.validation_path"]')).to_have_value(
        validation["path"])
    draft = json.loads(page.evaluate("localStorage.getItem('grpo-studio.draft')"))
    assert (draft["dataset"]["path"], draft["dataset"]["validation_path"],
            draft["dataset"]["validation_split"]) == (train["path"], validation["path"], 0)


# ---- statistics with the wizard's model ----------------------------------------------------------
def test_stats_fall_back_to_the_default_tokenizer_when_the_drafts_model_is_absent(
        page: Page, live_server: Any, small_jsonl: Path) -> None:
    open_datasets(page)
    page.evaluate("""() => localStorage.setItem('grpo-studio.draft',
        JSON.stringify({ model: { name: 'acme/not-here' } }))""")
    open_datasets(page)
    note = page.locator("#stats-tokenizer")
    expect(note).to_contain_text("acme/not-here")
    page.locator("#upload-file").set_input_files(str(small_jsonl))
    expect(page.locator("#validation-summary")).to_have_attribute("data-invalid", "2")
    page.locator("#stats-run").click()
    expect(page.locator("#stats-result")).to_be_visible(timeout=STATS_MS)
    expect(page.locator("#stats-error")).to_be_empty()
    expect(note).to_have_attribute("data-tokenizer", "default")
    expect(note).to_contain_text("not on this machine: acme/not-here")
    expect(page.locator("#stats-rows")).to_have_text(str(READABLE_ROWS))


# ---- public datasets -------------------------------------------------------------------------------
def catalog_item(page: Page, dataset_id: str) -> Any:
    return page.locator(f'#catalog-list > li.catalog-item[data-id="{dataset_id}"]')


def test_the_catalog_lists_the_seven_public_datasets(page: Page, live_server: Any) -> None:
    catalog = live_server.api("GET", "/api/datasets/catalog").json()["datasets"]
    assert len(catalog) == 7
    open_datasets(page)
    items = page.locator("#catalog-list > li.catalog-item")
    expect(items).to_have_count(7)
    for entry, item in zip(catalog, items.all()):
        expect(item).to_have_attribute("data-id", entry["id"])
        expect(item.locator("[data-role=name]")).to_have_text(entry["name"])
        expect(item.locator("[data-role=hub-id]")).to_have_text(entry["id"])
        expect(item.locator("[data-role=split]")).to_contain_text(entry["split"])
        expect(item.locator("[data-role=rows]")).to_contain_text(re.compile(r"\d"))
        expect(item.locator(".catalog-description")).to_have_text(entry["description"])
        for reward in entry["rewards"]:
            expect(item.locator("[data-role=rewards]")).to_contain_text(reward)
        expect(item.locator("[data-action=download]")).to_be_visible()
        expect(item.locator("[data-role=progress]")).to_be_hidden()
    expect(catalog_item(page, "openai/gsm8k").locator("[data-role=split]")).to_have_text(
        "main / train")
    expect(catalog_item(page, "nvidia/OpenMathReasoning").locator("[data-role=rows]")).to_contain_text(
        "50,000")


@pytest.mark.parametrize("hub_env", ["offline"], indirect=True)
def test_a_download_without_the_hub_shows_the_apis_message_on_its_row(
        page: Page, live_server: Any) -> None:
    open_datasets(page)
    item = catalog_item(page, "openai/gsm8k")
    item.locator("[data-action=download]").click()
    expect(item).to_have_attribute("data-status", "failed", timeout=DOWNLOAD_MS)
    [state] = live_server.api("GET", "/api/datasets/catalog").json()["downloads"]
    assert state["error"].startswith("the Hugging Face hub cannot be reached")
    expect(item.locator("[data-role=error]")).to_have_text(state["error"])
    expect(item.locator("[data-action=cancel]")).to_be_hidden()
    expect(item.locator("[data-action=download]")).to_be_enabled()
    expect(page.locator("#catalog-list [data-role=error]:not(:empty)")).to_have_count(1)
    assert uploads(live_server) == []


@pytest.mark.parametrize("hub_env", ["stand-in"], indirect=True)
def test_a_download_reaches_done_and_is_a_new_upload(page: Page, live_server: Any) -> None:
    open_datasets(page)
    expect(page.locator("#datasets-empty")).to_be_visible()
    item = catalog_item(page, "rajpurkar/squad_v2")
    item.locator("[data-action=download]").click()
    expect(item).to_have_attribute("data-status", "done", timeout=DOWNLOAD_MS)
    expect(item.locator("[data-role=progress] progress")).to_have_js_property("value", 1)
    expect(item.locator("[data-role=error]")).to_be_empty()
    [upload] = uploads(live_server)
    assert upload["name"] == "SQuAD v2 (train)"
    listed = page.locator(f'#dataset-list > li.dataset-item[data-id="{upload["id"]}"]')
    expect(listed.locator(".dataset-name")).to_have_text("SQuAD v2 (train)")
    expect(item.locator("[data-role=downloaded]")).to_contain_text("SQuAD v2 (train)")
    expect(item.locator("[data-action=download]")).to_be_hidden()
    item.locator("[data-action=open]").click()
    expect(page.locator("#detail-name")).to_have_text("SQuAD v2 (train)")
