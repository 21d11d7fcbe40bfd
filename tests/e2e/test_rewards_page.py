"""The reward testing page in a real browser: preset rewards on cases typed by hand (scores, totals,
statistics, histogram, a reload that keeps everything), a custom reward written in the CodeMirror
editor (a syntax error marked at its line, then fixed, saved and run), test cases loaded from the
bundled dataset, and a saved custom reward added to a run in the wizard. The page's screenshot
in docs/screenshots is written here.

Synchronisation is Playwright's auto-waiting: the page sets `body[data-ready="true"]` once its
catalog, library and datasets are loaded; results appear when the reward test has answered."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.slow

DATASET = Path(__file__).resolve().parents[2] / "data" / "arithmetic.jsonl"
RUN_MS = 60_000  # a reward test starts a child process (and a sandbox for custom code)

BROKEN_REWARD = '''def reward(completions, **kwargs):
    scores = []
    for completion in completions
        scores.append(1.0 if "4" in completion else 0.0)
    return scores
'''
FIXED_REWARD = BROKEN_REWARD.replace("in completions\n", "in completions:\n").replace(
    "    return scores", '    print("looked at", len(completions), "completions")\n    return scores')


# ---- helpers ---------------------------------------------------------------------------------
def open_page(page: Page) -> None:
    page.goto("/rewards/test")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def choose_reward(page: Page, reward: str, weight: str) -> None:
    card = page.locator(f'[data-reward="{reward}"]')
    card.locator("> label > input[type=checkbox]").check()
    card.locator(f'input[data-weight="{reward}"]').fill(weight)


def case_input(page: Page, index: int, column: str) -> Locator:
    return page.locator(f'#cases-table tr[data-case="{index}"] textarea[data-case-field="{column}"]')


def fill_case(page: Page, index: int, prompt: str, completion: str, reference: str) -> None:
    case_input(page, index, "prompt").fill(prompt)
    case_input(page, index, "completion").fill(completion)
    case_input(page, index, "reference").fill(reference)


def score(page: Page, row: int, reward: str) -> Locator:
    return page.locator(f'#results-table tr[data-result="{row}"] td[data-score="{reward}"]')


def total(page: Page, row: int) -> Locator:
    return page.locator(f'#results-table tr[data-result="{row}"] td[data-total]')


def stat(page: Page, name: str) -> Locator:
    return page.locator(f'#statistics [data-stat="{name}"] strong')


def run(page: Page) -> None:
    page.locator("#run-test").click()
    expect(page.locator("#run-test")).to_be_enabled(timeout=RUN_MS)


def type_code(page: Page, source: str) -> None:
    """Replaces the editor's text as a paste would (typing would auto-indent each line)."""
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)


def histogram_counts(page: Page) -> list[int]:
    return page.evaluate("() => Chart.getChart('histogram').data.datasets[0].data")


# ---- preset rewards on cases typed by hand ---------------------------------------------------
def test_presets_score_cases_typed_by_hand(page: Page, live_server: Any) -> None:
    open_page(page)
    choose_reward(page, "answer_correct", "2")
    choose_reward(page, "format_markers", "0.5")
    fill_case(page, 0, "What is 2 + 2?", "<think>2 and 2 make 4</think><answer>4</answer>", "4")
    page.locator("#add-case").click()
    fill_case(page, 1, "What is 3 + 3?", "7", "6")

    run(page)
    expect(page.locator("#results")).to_be_visible()
    expect(page.locator("#results-table tbody tr")).to_have_count(2)
    expect(page.locator('#results-table th[data-reward-column="answer_correct"]')).to_have_text(
        "answer_correct × 2")
    expect(score(page, 0, "answer_correct")).to_have_text("1")
    expect(score(page, 0, "format_markers")).to_have_text("1")
    expect(total(page, 0)).to_have_text("2.5")
    expect(score(page, 1, "answer_correct")).to_have_text("0")
    expect(score(page, 1, "format_markers")).to_have_text("0")
    expect(total(page, 1)).to_have_text("0")
    expect(stat(page, "mean")).to_have_text("1.25")
    expect(stat(page, "std")).to_have_text("1.25")
    expect(stat(page, "min")).to_have_text("0")
    expect(stat(page, "max")).to_have_text("2.5")
    expect(stat(page, "count")).to_have_text("2")
    assert sorted(histogram_counts(page)) == [1, 1]
    expect(page.locator("#custom-output-box")).to_be_hidden()

    # a reload loses nothing: rewards, weights and cases come back from localStorage
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator('[data-reward="answer_correct"] > label > input')).to_be_checked()
    expect(page.locator('input[data-weight="format_markers"]')).to_have_value("0.5")
    expect(case_input(page, 1, "completion")).to_have_value("7")


def test_bad_parameter_is_shown_on_its_reward(page: Page, live_server: Any) -> None:
    open_page(page)
    choose_reward(page, "length_band", "1")
    page.locator('[data-reward="length_band"] input[data-param="min_length"]').fill("-5")
    fill_case(page, 0, "Say hi", "hi", "")
    run(page)
    expect(page.locator('[data-reward="length_band"] [data-error-for="rewards.0"]')).to_contain_text(
        "length_band")
    expect(page.locator("#results")).to_be_hidden()


# ---- a custom reward: syntax error at its line, fixed, saved, run ----------------------------
def test_custom_reward_checked_saved_and_run(page: Page, live_server: Any) -> None:
    open_page(page)
    type_code(page, BROKEN_REWARD)
    page.locator("#custom-check").click()
    expect(page.locator("#custom-error")).to_contain_text(re.compile(r"line 3\b", re.I))
    marked = page.locator(".CodeMirror .cm-error-line")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("for completion in completions")
    expect(page.locator(".CodeMirror .cm-error-message")).to_be_visible()

    type_code(page, FIXED_REWARD)
    expect(page.locator(".CodeMirror .cm-error-line")).to_have_count(0)
    expect(page.locator("#custom-error")).to_be_empty()
    page.locator("#custom-check").click()
    expect(page.locator("#custom-status")).to_contain_text("reward()")

    page.locator("#custom-name").fill("has_four")
    page.locator("#custom-save").click()
    expect(page.locator("#custom-status")).to_contain_text("has_four")
    expect(page.locator("#custom-library")).to_have_value("has_four")
    saved = live_server.api("GET", "/api/rewards/custom/has_four").json()
    assert saved["source"] == FIXED_REWARD

    page.locator("#custom-enabled").check()
    page.locator("#custom-weight").fill("3")
    fill_case(page, 0, "What is 2 + 2?", "It is 4.", "4")
    page.locator("#add-case").click()
    fill_case(page, 1, "What is 2 + 3?", "It is 5.", "5")
    run(page)
    expect(page.locator('#results-table th[data-reward-column="custom"]')).to_have_text("custom × 3")
    expect(score(page, 0, "custom")).to_have_text("1")
    expect(score(page, 1, "custom")).to_have_text("0")
    expect(total(page, 0)).to_have_text("3")
    expect(page.locator("#custom-output")).to_have_text(re.compile(r"looked at 2 completions"))

    # a reward that misbehaves at run time: the error is shown at the editor
    type_code(page, "def reward(completions, **kwargs):\n    return [1.0]\n")
    run(page)
    expect(page.locator("#custom-error")).to_contain_text("custom")
    expect(page.locator("#results")).to_be_hidden()


# ---- test cases from the bundled dataset -------------------------------------------------------
def test_cases_load_from_bundled_dataset(page: Page, live_server: Any, screenshots: Path) -> None:
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()[:3]]
    open_page(page)
    page.locator("#dataset-select").select_option("arithmetic")
    page.locator("#dataset-rows").fill("3")
    page.locator("#load-cases").click()

    # the empty starting case is replaced by the three rows: prompts and references filled
    expect(page.locator("#cases-table tbody tr[data-case]")).to_have_count(3)
    for i, row in enumerate(rows):
        expect(case_input(page, i, "prompt")).to_have_value(row["question"])
        expect(case_input(page, i, "completion")).to_have_value("")
        reference = case_input(page, i, "reference").input_value()
        assert reference and reference in row["answer"]

    # the dataset's own answer as the completion of the first row, a wrong one for the second
    page.locator('#cases-table tr[data-case="0"] [data-action="use-response"]').click()
    expect(case_input(page, 0, "completion")).to_have_value(rows[0]["answer"])
    case_input(page, 1, "completion").fill("I do not know.")
    page.locator('#cases-table tr[data-case="2"] [data-action="remove-case"]').click()
    expect(page.locator("#cases-table tbody tr[data-case]")).to_have_count(2)

    choose_reward(page, "answer_correct", "1")
    choose_reward(page, "length_band", "0.5")
    run(page)
    expect(score(page, 0, "answer_correct")).to_have_text("1")
    expect(score(page, 1, "answer_correct")).to_have_text("0")
    expect(page.locator("#cases-table textarea")).to_have_count(6)
    page.locator("#results").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "rewards_test.png"), full_page=True)


# ---- a saved custom reward in the wizard --------------------------------------------------------
def test_saved_custom_reward_joins_the_wizard_draft(page: Page, live_server: Any) -> None:
    created = live_server.api("POST", "/api/rewards/custom",
                              json={"name": "has_four", "source": FIXED_REWARD})
    assert created.status_code == 201, created.text
    page.goto("/wizard/rewards")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#write-custom-reward")).to_have_attribute("href", "/rewards/test")
    card = page.locator('[data-custom-reward="has_four"]')
    card.locator("> label > input[type=checkbox]").check()
    expect(card).to_have_class(re.compile(r"\bselected\b"))
    card.locator('input[data-weight="has_four"]').fill("0.25")

    def draft_rewards() -> list[dict[str, Any]]:
        return json.loads(page.evaluate("localStorage.getItem('grpo-studio.draft')"))["rewards"]
    page.wait_for_function("() => (JSON.parse(localStorage.getItem('grpo-studio.draft')).rewards"
                           ".find(r => r.name === 'has_four') || {}).weight === 0.25")
    entry = next(r for r in draft_rewards() if r["name"] == "has_four")
    assert entry == {"name": "has_four", "weight": 0.25, "params": {}, "source": FIXED_REWARD}

    card.locator("> label > input[type=checkbox]").uncheck()
    expect(card).not_to_have_class(re.compile(r"\bselected\b"))
    assert all(r["name"] != "has_four" for r in draft_rewards())


# ---- a reward that reads another column ----------------------------------------------------------
def test_reward_reading_a_column_adds_it_to_the_cases(page: Page, live_server: Any) -> None:
    open_page(page)
    expect(page.locator("#cases-table thead")).not_to_contain_text("tests")
    choose_reward(page, "passes_tests", "1")
    expect(page.locator("#cases-table thead")).to_contain_text("tests")
    fill_case(page, 0, "Write f", "```python\ndef f():\n    return 1\n```", "")
    case_input(page, 0, "tests").fill('["assert f() == 1", "assert f() == 2"]')
    page.locator("#add-case").click()
    fill_case(page, 1, "Write g", "def g():\n    return 2", "")
    run(page)
    expect(score(page, 0, "passes_tests")).to_have_text("0.5")
    expect(score(page, 1, "passes_tests")).to_have_text("–")  # no tests: no score
    expect(stat(page, "count")).to_have_text("1")
