"""Reward presets: tables of (completion, reference, params) -> expected score, a comment per case."""
from __future__ import annotations

import pickle

import pytest

from rewards import Markers, RewardError, build_reward, list_rewards

M = Markers()

CORRECTNESS = [
    # plain number inside the solution markers
    ("<think>2+2</think><answer>4</answer>", "4", {}, 1.0),
    # thousands separators and currency are ignored
    ("<answer>$1,200</answer>", "1200", {}, 1.0),
    # units after the number are ignored
    ("<answer>12 apples</answer>", "12", {}, 1.0),
    # the last number in the answer counts (worked steps before it)
    ("<answer>3 + 4 = 7</answer>", "7", {}, 1.0),
    # wrong number
    ("<answer>8</answer>", "7", {}, 0.0),
    # decimals within the relative tolerance
    ("<answer>0.33333</answer>", "0.3333", {"tolerance": 1e-3}, 1.0),
    # ... and outside it
    ("<answer>0.5</answer>", "0.3333", {"tolerance": 1e-3}, 0.0),
    # fractions compare by value
    ("<answer>3/4</answer>", "0.75", {}, 1.0),
    # negative numbers keep their sign
    ("<answer>-5</answer>", "5", {}, 0.0),
    # no markers: the whole completion is read (last number)
    ("so the total is 42", "42", {}, 1.0),
    # no markers and require_markers: 0
    ("so the total is 42", "42", {"require_markers": True}, 0.0),
    # the answer is taken from the last solution block
    ("<answer>1</answer> wait <answer>2</answer>", "2", {}, 1.0),
    # text references: normalised match (case, punctuation, articles)
    ("<answer>The Eiffel Tower.</answer>", "eiffel tower", {}, 1.0),
    ("<answer>Big Ben</answer>", "eiffel tower", {}, 0.0),
    # numeric mode never falls back to text
    ("<answer>four</answer>", "4", {"mode": "numeric"}, 0.0),
    # text mode compares text even for numbers
    ("<answer>4.0</answer>", "4", {"mode": "text"}, 0.0),
    # a row without a reference is left out (None), not scored 0
    ("<answer>4</answer>", None, {}, None),
    ("<answer>4</answer>", "", {}, None),
]


@pytest.mark.parametrize("completion,reference,params,expected", CORRECTNESS)
def test_answer_correct(completion, reference, params, expected):
    reward = build_reward("answer_correct", params, M)
    assert reward([completion], reference=[reference]) == [expected]


def test_answer_correct_without_references_is_an_error_not_zero():
    reward = build_reward("answer_correct", {}, M)
    with pytest.raises(RewardError, match="reference"):
        reward(["<answer>4</answer>"])


def test_answer_correct_uses_the_runs_markers():
    reward = build_reward("answer_correct", {}, Markers("[R]", "[/R]", "[S]", "[/S]"))
    assert reward(["<answer>1</answer>[S]2[/S]"], reference=["2"]) == [1.0]


FORMAT = [
    # every marker in order
    ("<think>a</think><answer>1</answer>", {}, 1.0),
    # nothing at all
    ("just 1", {}, 0.0),
    # half of the markers
    ("<think>a</think> 1", {}, 0.5),
    # markers count in order: the reasoning pair is found, no solution pair after it
    ("<answer>1</answer><think>a</think>", {}, 0.5),
    # strict: all markers and nothing after the solution
    ("<think>a</think><answer>1</answer>", {"strict": True}, 1.0),
    ("<think>a</think><answer>1</answer> more words", {"strict": True}, 0.0),
    ("<think>a</think>", {"strict": True}, 0.0),
]


@pytest.mark.parametrize("completion,params,expected", FORMAT)
def test_format_markers(completion, params, expected):
    assert build_reward("format_markers", params, M)([completion]) == [expected]


def test_format_markers_skips_empty_markers():
    reward = build_reward("format_markers", {}, Markers("", "", "<a>", "</a>"))
    assert reward(["<a>1</a>"]) == [1.0]


LENGTH = [
    # inside the band
    ("one two three", {"min_length": 2, "max_length": 5}, 1.0),
    # below: proportional
    ("one", {"min_length": 2, "max_length": 5}, 0.5),
    # above: falls to 0 at twice the maximum
    ("a b c d e f g", {"min_length": 1, "max_length": 5}, 0.6),
    ("a " * 20, {"min_length": 1, "max_length": 5}, 0.0),
    # characters instead of words
    ("abcd", {"min_length": 1, "max_length": 4, "unit": "characters"}, 1.0),
    ("", {"min_length": 1, "max_length": 4, "unit": "characters"}, 0.0),
]


@pytest.mark.parametrize("completion,params,expected", LENGTH)
def test_length_band(completion, params, expected):
    assert build_reward("length_band", params)([completion]) == [pytest.approx(expected)]


BAD_PARAMS = [
    # unknown parameter names are listed
    ("answer_correct", {"tolerence": 0.1}, "no parameter tolerence"),
    # out of range
    ("answer_correct", {"tolerance": 5}, "above the maximum"),
    # wrong type
    ("length_band", {"min_length": "ten"}, "expected a number"),
    # choices
    ("length_band", {"unit": "pages"}, "not one of"),
    # unknown reward id lists the registry
    ("no_such_reward", {}, "available: "),
]


@pytest.mark.parametrize("reward_id,params,message", BAD_PARAMS)
def test_bad_parameters_are_named(reward_id, params, message):
    with pytest.raises(RewardError, match=message):
        build_reward(reward_id, params, M)


def test_catalog_lists_metadata():
    catalog = {r["id"]: r for r in list_rewards()}
    assert {"answer_correct", "format_markers", "length_band"} <= set(catalog)
    assert catalog["answer_correct"]["needs"] == ["reference"]
    assert {p["name"] for p in catalog["length_band"]["parameters"]} == \
        {"min_length", "max_length", "unit"}


def test_built_rewards_are_picklable_and_named_for_trl():
    reward = pickle.loads(pickle.dumps(build_reward("format_markers", {}, M, name="fmt")))
    assert reward.__name__ == "fmt"
    assert reward(["<think>a</think><answer>1</answer>"]) == [1.0]
