"""Reasoning presets: tables of (completion, params) -> expected score, a comment per case."""
from __future__ import annotations

import pytest

from rewards import Markers, RewardError, build_reward

M = Markers()


def score(reward_id, completion, params, markers=M):
    return build_reward(reward_id, params, markers)([completion])[0]


REASONING_PRESENT = [
    # enough words between the reasoning markers
    ("<think>add two and two</think><answer>4</answer>", {"min_words": 4}, 1.0),
    # half the words wanted: half the credit
    ("<think>two plus</think><answer>4</answer>", {"min_words": 4}, 0.5),
    # the default asks for 20 words
    ("<think>" + "word " * 10 + "</think>", {}, 0.5),
    # no markers
    ("add two and two, so 4", {"min_words": 4}, 0.0),
    # empty reasoning
    ("<think></think><answer>4</answer>", {"min_words": 4}, 0.0),
    # a start marker never closed
    ("<think>add two and two", {"min_words": 4}, 0.0),
    # only the end marker (the chat template put the start marker in the prompt)
    ("add two and two</think><answer>4</answer>", {"min_words": 4}, 1.0),
]

STEP_MARKERS = [
    # "Step N" anywhere
    ("Step 1: add. Step 2: carry. Step 3: done.", {}, 1.0),
    # numbered lines
    ("1. add\n2. carry\n3) done", {}, 1.0),
    # bullets: two of three steps
    ("- add\n* carry", {}, pytest.approx(2 / 3)),
    # ordinal words opening lines
    ("First, add.\nNext: carry.\nFinally, done.", {}, 1.0),
    # prose without steps
    ("The answer is 4.", {}, 0.0),
    # a decimal at the start of a line is not a numbered step
    ("1.5 is half of 3", {}, 0.0),
    # "Step N" at the start of a line is counted once
    ("Step 1: add\nStep 2: carry", {"min_steps": 4}, 0.5),
    # only the reasoning is read when the markers are there
    ("<think>Step 1: add</think>\n1. a\n2. b\n3. c", {}, pytest.approx(1 / 3)),
]

REASONING_BEFORE_ANSWER = [
    # reasoning, then the answer
    ("<think>x</think><answer>1</answer>", {}, 1.0),
    # the answer first
    ("<answer>1</answer><think>x</think>", {}, 0.0),
    # an early answer is not excused by a later one
    ("<answer>1</answer><think>x</think><answer>2</answer>", {}, 0.0),
    # the start marker in the prompt: the end marker is enough
    ("x</think><answer>1</answer>", {}, 1.0),
    # the reasoning never ends
    ("<think>x<answer>1</answer>", {}, 0.0),
    # no answer
    ("<think>x</think> 1", {}, 0.0),
]

TABLES = {"reasoning_present": REASONING_PRESENT, "step_markers": STEP_MARKERS,
          "reasoning_before_answer": REASONING_BEFORE_ANSWER}


@pytest.mark.parametrize("completion,params,expected", REASONING_PRESENT)
def test_reasoning_present(completion, params, expected):
    assert score("reasoning_present", completion, params) == expected


@pytest.mark.parametrize("completion,params,expected", STEP_MARKERS)
def test_step_markers(completion, params, expected):
    assert score("step_markers", completion, params) == expected


@pytest.mark.parametrize("completion,params,expected", REASONING_BEFORE_ANSWER)
def test_reasoning_before_answer(completion, params, expected):
    assert score("reasoning_before_answer", completion, params) == expected


def test_reasoning_uses_the_runs_markers():
    markers = Markers("[R]", "[/R]", "[S]", "[/S]")
    assert score("reasoning_before_answer", "[R]x[/R][S]1[/S]", {}, markers) == 1.0
    assert score("reasoning_present", "[R]a b[/R]", {"min_words": 2}, markers) == 1.0


ERRORS = [
    # no reasoning end marker in the template
    ("reasoning_present", {}, Markers(reasoning_start="", reasoning_end=""), "reasoning_end"),
    # no solution start marker in the template
    ("reasoning_before_answer", {}, Markers(solution_start=""), "solution_start"),
    # min_words below its minimum
    ("reasoning_present", {"min_words": 0}, M, "below the minimum"),
    # min_steps must be a number
    ("step_markers", {"min_steps": "three"}, M, "expected a number"),
]


@pytest.mark.parametrize("reward_id,params,markers,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, params, markers, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, "<think>x</think><answer>1</answer>", params, markers)
