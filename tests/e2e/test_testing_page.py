"""The model testing page and the reward page's "Generate completions" in a real browser, on the
tiny random model (its text is gibberish: these tests check structure, never content).

- Chat: the answer grows in its bubble piece by piece as `generation_token` events arrive, and ends
  as exactly the text the API answered, with its figures (tokens/s …); Stop ends it early.
- Side by side, opened on a finished tiny run (`/test?run=`): the run's base model faces its
  fine-tuned result by default, and both columns show their answer and their own tokens/s.
- Held-out evaluation of that run: a row per model (base, fine-tuned) and the bar chart.
- Batch: a CSV of 3 prompts with references, scored by a preset reward: a table of 3 rows and a CSV
  download with the contract's header; the page fits a 390 px wide phone screen.
- Reward page: "Generate completions" writes each case's completion.

One server (and so one warm inference worker) serves the whole module. Synchronisation is
Playwright's auto-waiting with deadlines, never sleeps."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, kill_workers_of, tiny_config

pytestmark = pytest.mark.slow

GENERATE_MS = 120_000  # the first request starts the inference worker, which imports torch
MAX_TOKENS = "12"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (overrides the per-test one): its inference worker stays warm."""
    root = tmp_path_factory.mktemp("testing-page")
    server = LiveServer(root).start()
    yield server
    server.kill(15)
    kill_workers_of(root)


@pytest.fixture(scope="module")
def finished_run(live_server: LiveServer, tiny_model: Path) -> str:
    """A one-step GRPO run on the tiny model, trained in this process (a few seconds)."""
    from core.config import validate_config
    from core.run_dir import create_run
    from core.worker import run_worker
    config = tiny_config(tiny_model, training={"max_steps": 1}, output={"sample_every": 0})
    run = create_run(validate_config(config), live_server.root / "outputs", run_id="tiny-run")
    assert run_worker(run) == "completed"
    return run.run_id


# ---- helpers ---------------------------------------------------------------------------------
def open_page(page: Page, url: str = "/test") -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def use_model_path(page: Page, picker: str, path: Path) -> None:
    page.locator(f"#{picker}").select_option("__path__")
    page.locator(f"#{picker}-path").fill(str(path))


def fast_settings(page: Page, prefix: str) -> None:
    """Greedy and short, for speed."""
    page.locator(f"#{prefix}-temperature").fill("0")
    page.locator(f"#{prefix}-max-tokens").fill(MAX_TOKENS)


def generation_responses(page: Page) -> list[Any]:
    """The responses to POST /api/models/test that the page receives from now on, in order (read
    after the page has shown them: Playwright delivers the event before its next answer)."""
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if r.url.endswith("/api/models/test")
            and r.request.method == "POST" else None)
    return responses


def fits_the_width(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# ---- chat ------------------------------------------------------------------------------------
RECORD_LENGTHS = """() => {
  window.__lengths = [];
  const log = document.getElementById("chat-log");
  new MutationObserver(() => {
    const box = [...log.querySelectorAll(".message.assistant .message-text")].pop();
    if (box) window.__lengths.push(box.textContent.length);
  }).observe(log, { childList: true, characterData: true, subtree: true });
}"""


def test_chat_streams_the_answer_piece_by_piece(page: Page, tiny_model: Path) -> None:
    open_page(page)
    use_model_path(page, "chat-model", tiny_model)
    fast_settings(page, "chat")
    page.evaluate(RECORD_LENGTHS)
    responses = generation_responses(page)
    page.locator("#chat-input").fill("Count to five.")
    page.locator("#chat-send").click()

    answer = page.locator("#chat-log .message.assistant").last
    expect(answer.locator('[data-stat="tokens_per_second"]')).to_be_visible(timeout=GENERATE_MS)
    answers = [r.json() for r in responses]
    assert len(answers) == 1
    text = answers[0]["text"]
    assert answers[0]["tokens"] == int(MAX_TOKENS) and answers[0]["finish_reason"] == "length"
    assert answer.locator(".message-text").text_content() == text

    lengths = page.evaluate("window.__lengths")
    growing = [n for n in lengths if 0 < n < len(text)]
    assert len(set(growing)) >= 3, lengths                # several partial texts were shown …
    assert growing == sorted(growing), lengths             # … each longer than the one before
    assert lengths[-1] == len(text)
    expect(answer).to_have_attribute("data-state", "length")
    expect(answer.locator('[data-stat="tokens"]')).to_have_attribute("data-value", MAX_TOKENS)

    # the exact prompt the model saw is one click away
    page.locator("#chat-prompt-details summary").click()
    expect(page.locator("#chat-prompt")).to_have_text(answers[0]["prompt"])

    # a second turn sends the whole conversation
    with page.expect_request(lambda r: r.url.endswith("/api/models/test")) as sent:
        page.locator("#chat-input").fill("And then?")
        page.locator("#chat-send").click()
    messages = sent.value.post_data_json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == text
    expect(page.locator("#chat-log .message.assistant")).to_have_count(2)
    expect(page.locator("#chat-log .message.assistant").last.locator(
        '[data-stat="tokens_per_second"]')).to_be_visible(timeout=GENERATE_MS)
    page.locator("#chat-clear").click()
    expect(page.locator("#chat-log .message")).to_have_count(0)


def test_stop_ends_an_answer_early_with_the_text_so_far(page: Page, tiny_model: Path) -> None:
    open_page(page)
    use_model_path(page, "chat-model", tiny_model)
    page.locator("#chat-temperature").fill("0")
    page.locator("#chat-max-tokens").fill("4000")  # far more than it streams before Stop
    responses = generation_responses(page)
    page.locator("#chat-input").fill("Tell a long story.")
    page.locator("#chat-send").click()
    answer = page.locator("#chat-log .message.assistant").last
    expect(answer).to_have_attribute("data-state", "streaming", timeout=GENERATE_MS)
    page.locator("#chat-stop").click()
    expect(answer).to_have_attribute("data-state", "cancelled", timeout=30_000)
    result = responses[0].json()
    assert result["finish_reason"] == "cancelled" and 0 < result["tokens"] < 4000
    assert answer.locator(".message-text").text_content() == result["text"]
    expect(answer.locator('[data-stat="finish_reason"]')).to_have_text("stopped")
    expect(page.locator("#chat-send")).to_be_enabled()


# ---- side by side ----------------------------------------------------------------------------
def test_side_by_side_compares_a_runs_base_and_result(page: Page, live_server: LiveServer,
                                                     finished_run: str) -> None:
    models = live_server.api("GET", "/api/test/models").json()["models"]
    base = next(m for m in models if m["select"] == {"session_id": finished_run, "base": True})
    tuned = next(m for m in models if m["select"] == {"session_id": finished_run})
    open_page(page, f"/test?run={finished_run}#side")
    expect(page.locator("#panel-side")).to_be_visible()
    expect(page.locator("#side-model-a")).to_have_value(base["id"])
    expect(page.locator("#side-model-b")).to_have_value(tuned["id"])
    fast_settings(page, "side")
    responses = generation_responses(page)
    page.locator("#side-prompt").fill("What is 2 + 2?")
    page.locator("#side-run").click()
    expect(page.locator(".side-column[data-side=b] .answer-stats")).to_be_visible(timeout=GENERATE_MS)

    answers = [r.json() for r in responses]
    assert [r.request.post_data_json["session_id"] for r in responses] == [finished_run] * 2
    assert [r.request.post_data_json.get("base") for r in responses] == [True, None]
    for side, model, answer in zip("ab", (base, tuned), answers):
        column = page.locator(f'.side-column[data-side="{side}"]')
        expect(column.locator(".side-label")).to_have_text(model["label"])
        expect(column.locator(".side-text")).to_have_text(answer["text"])
        speed = column.locator('[data-stat="tokens_per_second"]')
        expect(speed).to_contain_text("tokens/s")
        assert float(speed.get_attribute("data-value")) > 0
        # the run's training prompt format was used (its system prompt is in the exact prompt)
        column.locator(".side-prompt summary").click()
        expect(column.locator(".side-prompt pre")).to_have_text(answer["prompt"])


# ---- held-out evaluation ---------------------------------------------------------------------
def test_held_out_evaluation_compares_base_and_fine_tuned(page: Page, finished_run: str) -> None:
    open_page(page, f"/test?run={finished_run}#eval")
    page.locator("#eval-rows").fill("2")
    page.locator("#eval-max-tokens").fill(MAX_TOKENS)
    page.locator("#eval-perplexity").uncheck()
    with page.expect_request(lambda r: r.url.endswith("/api/test/eval")) as sent:
        page.locator("#eval-run").click()
    assert sent.value.post_data_json["session_id"] == finished_run
    assert sent.value.post_data_json["perplexity"] is False
    rows = page.locator("#eval-table tbody tr")
    expect(rows).to_have_count(2, timeout=GENERATE_MS)
    expect(rows.nth(0)).to_have_attribute("data-model", "base")
    expect(rows.nth(1)).to_have_attribute("data-model", "fine-tuned")
    expect(rows.nth(1).locator('[data-metric="mean_reward"]')).not_to_have_text("–")
    expect(rows.nth(1).locator('[data-metric="perplexity"]')).to_have_text("–")
    expect(page.locator("#eval-note")).to_be_visible()  # the run held no rows out: it says so
    assert page.evaluate("(bar => bar.value === bar.max)(document.getElementById('eval-progress'))")
    assert page.evaluate("Chart.getChart(document.getElementById('eval-chart')).data.datasets.length") == 2


# ---- batch -----------------------------------------------------------------------------------
BATCH_PROMPTS = [("What is 2 + 2?", "4"), ("What is 3 + 5?", "8"), ("Spell cat.", "c-a-t")]


def test_a_batch_is_scored_listed_and_downloaded(page: Page, tiny_model: Path,
                                                 tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.csv"
    with prompts.open("w", newline="") as f:
        csv.writer(f).writerows([("question", "answer"), *BATCH_PROMPTS])
    open_page(page, "/test#batch")
    use_model_path(page, "batch-model", tiny_model)
    fast_settings(page, "batch")
    page.locator("#batch-file").set_input_files(prompts)
    expect(page.locator("#batch-file-status")).to_have_attribute("data-count", "3")
    page.locator("#batch-presets summary").click()
    page.locator('[data-reward="length_band"] > label > input[type=checkbox]').check()
    expect(page.locator("#batch-presets-count")).to_have_text("1")

    page.locator("#batch-run").click()
    rows = page.locator("#batch-table tbody tr")
    expect(rows).to_have_count(3, timeout=GENERATE_MS)
    expect(page.locator('#batch-table th[data-reward-column="length_band"]')).to_be_visible()
    expect(rows.first.locator('td[data-score="length_band"]')).not_to_have_text("")
    expect(page.locator('#batch-summary [data-stat="mean_total"] strong')).not_to_have_text("–")

    with page.expect_download() as download:
        page.locator("#batch-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["index", "prompt", "reference", "completion", "tokens", "seconds",
                        "length_band", "total"]
    assert [(row[1], row[2]) for row in table[1:]] == BATCH_PROMPTS

    # a phone: every tab fits the screen's width (tables scroll inside their box)
    page.set_viewport_size(PHONE)
    for tab in ("chat", "side", "batch", "eval"):
        page.locator(f"#tab-{tab}").click()
        expect(page.locator(f"#panel-{tab}")).to_be_visible()
        assert fits_the_width(page), tab


# ---- the reward page -------------------------------------------------------------------------
def test_the_reward_page_generates_completions_for_its_cases(page: Page,
                                                             tiny_model: Path) -> None:
    open_page(page, "/rewards/test")
    page.locator('#cases-table tr[data-case="0"] textarea[data-case-field="prompt"]').fill("1 + 1 =")
    page.locator("#add-case").click()
    page.locator('#cases-table tr[data-case="1"] textarea[data-case-field="prompt"]').fill("2 + 2 =")
    use_model_path(page, "generate-model", tiny_model)
    page.locator("#generate-temperature").fill("0")
    page.locator("#generate-max-tokens").fill(MAX_TOKENS)
    responses = generation_responses(page)
    page.locator("#generate-completions").click()
    expect(page.locator("#generate-status")).to_have_text("Completions generated: 2",
                                                          timeout=GENERATE_MS)
    expect(page.locator("#generate-completions")).to_be_enabled()

    answers = [r.json() for r in responses]
    assert len(answers) == 2
    for case, answer in enumerate(answers):
        completion = page.locator(f'#cases-table tr[data-case="{case}"] textarea[data-case-field="completion"]')
        expect(completion).to_have_value(answer["text"])
        assert answer["tokens"] == int(MAX_TOKENS)
