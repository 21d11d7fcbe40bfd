"""Maths presets: tables of (completion, row columns, params) -> expected score, a comment per
case."""
from __future__ import annotations

import threading

import pytest

from rewards import Markers, RewardError, build_reward

M = Markers()


def score(reward_id, completion, columns, params, markers=M):
    reward = build_reward(reward_id, params, markers)
    return reward([completion], **{k: [v] for k, v in columns.items()})[0]


ANSWER_CORRECT = [
    # plain number inside the solution markers
    ("<think>2+2</think><answer>4</answer>", {"reference": "4"}, {}, 1.0),
    # thousands separators and currency are ignored
    ("<answer>$1,200</answer>", {"reference": "1200"}, {}, 1.0),
    # units after the number are ignored
    ("<answer>12 apples</answer>", {"reference": "12"}, {}, 1.0),
    # the result of a worked equation counts
    ("<answer>3 + 4 = 7</answer>", {"reference": "7"}, {}, 1.0),
    # wrong number
    ("<answer>8</answer>", {"reference": "7"}, {}, 0.0),
    # decimals within the relative tolerance
    ("<answer>0.33333</answer>", {"reference": "0.3333"}, {"tolerance": 1e-3}, 1.0),
    # ... and outside it
    ("<answer>0.5</answer>", {"reference": "0.3333"}, {"tolerance": 1e-3}, 0.0),
    # tolerance 0 leaves only math_verify's own rounding (six decimals)
    ("<answer>0.3334</answer>", {"reference": "0.3333"}, {"tolerance": 0.0}, 0.0),
    # fractions compare by value with decimals
    ("<answer>3/4</answer>", {"reference": "0.75"}, {}, 1.0),
    # LaTeX: a boxed fraction
    ("<answer>\\boxed{\\frac{3}{4}}</answer>", {"reference": "0.75"}, {}, 1.0),
    # a LaTeX reference against a decimal answer
    ("<answer>0.5</answer>", {"reference": "\\frac{1}{2}"}, {}, 1.0),
    # percentages equal their fraction
    ("<answer>75%</answer>", {"reference": "0.75"}, {}, 1.0),
    # negative numbers keep their sign
    ("<answer>-5</answer>", {"reference": "5"}, {}, 0.0),
    # a reference stored as a number, not text
    ("<answer>4</answer>", {"reference": 4}, {}, 1.0),
    # no markers: the whole completion is read
    ("so the total is 42", {"reference": "42"}, {}, 1.0),
    # no markers and require_markers: 0
    ("so the total is 42", {"reference": "42"}, {"require_markers": True}, 0.0),
    # the answer is taken from the last solution block
    ("<answer>1</answer> wait <answer>2</answer>", {"reference": "2"}, {}, 1.0),
    # an answer with no maths against a numeric reference
    ("<answer>I do not know</answer>", {"reference": "4"}, {}, 0.0),
    # an empty answer
    ("<answer></answer>", {"reference": "4"}, {}, 0.0),
    # words are not numbers
    ("<answer>four</answer>", {"reference": "4"}, {}, 0.0),
    # text references: normalised match (case, punctuation, articles)
    ("<answer>The Eiffel Tower.</answer>", {"reference": "eiffel tower"}, {}, 1.0),
    # ... and a different text
    ("<answer>Big Ben</answer>", {"reference": "eiffel tower"}, {}, 0.0),
    # a row without a reference is left out (None), not scored 0
    ("<answer>4</answer>", {"reference": None}, {}, None),
    # a blank reference counts as none
    ("<answer>4</answer>", {"reference": "  "}, {}, None),
]

SOLUTION_IN_MARKERS = [
    # a non-empty answer between the markers
    ("<think>x</think><answer>Paris</answer>", {}, {}, 1.0),
    # markers with only spaces between them
    ("<answer>  </answer>", {}, {}, 0.0),
    # no markers at all
    ("Paris", {}, {}, 0.0),
    # a start marker that is never closed
    ("<answer>Paris", {}, {}, 0.0),
]

UNIT_PRESENT = [
    # the unit is read from the reference
    ("<answer>12 kg</answer>", {"reference": "12 kg"}, {}, 1.0),
    # the number without its unit
    ("<answer>12</answer>", {"reference": "12 kg"}, {}, 0.0),
    # the unit may touch the number, and case does not matter
    ("<answer>12KG</answer>", {"reference": "12 kg"}, {}, 1.0),
    # a unit that only contains the expected one does not count ("kg" holds no "g")
    ("<answer>12 kg</answer>", {"reference": None}, {"unit": "g"}, 0.0),
    # multi-part units from the reference
    ("<answer>60 km/h</answer>", {"reference": "60 km/h."}, {}, 1.0),
    # a percent sign is a unit
    ("<answer>45%</answer>", {"reference": "45%"}, {}, 1.0),
    # the unit parameter wins over the reference
    ("<answer>60 mph</answer>", {"reference": "60 km/h"}, {"unit": "mph"}, 1.0),
    # without markers the whole completion is read
    ("It weighs 12 kg in total.", {"reference": "12 kg"}, {}, 1.0),
    # a reference without a unit: the row is skipped
    ("<answer>12</answer>", {"reference": "12"}, {}, None),
    # no reference and no unit parameter: skipped
    ("<answer>12 kg</answer>", {"reference": None}, {}, None),
]

TABLES = {"answer_correct": ANSWER_CORRECT, "solution_in_markers": SOLUTION_IN_MARKERS,
          "unit_present": UNIT_PRESENT}


@pytest.mark.parametrize("completion,columns,params,expected", ANSWER_CORRECT)
def test_answer_correct(completion, columns, params, expected):
    assert score("answer_correct", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", SOLUTION_IN_MARKERS)
def test_solution_in_markers(completion, columns, params, expected):
    assert score("solution_in_markers", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", UNIT_PRESENT)
def test_unit_present(completion, columns, params, expected):
    assert score("unit_present", completion, columns, params) == expected


def test_answer_correct_works_outside_the_main_thread():
    # the web server scores from threads, where math_verify's signal timeouts cannot run
    reward, result = build_reward("answer_correct", {}, M), []
    worker = threading.Thread(target=lambda: result.append(
        reward(["<answer>\\frac{3}{4}</answer>"], reference=["0.75"])))
    worker.start()
    worker.join(timeout=30)
    assert result == [[1.0]]


def test_answer_correct_uses_the_runs_markers():
    reward = build_reward("answer_correct", {}, Markers("[R]", "[/R]", "[S]", "[/S]"))
    assert reward(["<answer>1</answer>[S]2[/S]"], reference=["2"]) == [1.0]


ERRORS = [
    # a batch without references is an error, never a silent 0
    ("answer_correct", {}, {}, M, "map a reference column"),
    # unit_present needs references when no unit parameter is given
    ("unit_present", {}, {}, M, "reference"),
    # a template without solution markers
    ("solution_in_markers", {}, {}, Markers(solution_start="", solution_end=""),
     "template has none"),
    # tolerance beyond its maximum
    ("answer_correct", {"reference": "4"}, {"tolerance": 2.0}, M, "above the maximum"),
]


@pytest.mark.parametrize("reward_id,columns,params,markers,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, columns, params, markers, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, "<answer>4</answer>", columns, params, markers)


def test_unit_parameter_needs_no_reference_column():
    assert build_reward("unit_present", {"unit": "kg"}, M)(["<answer>3 kg</answer>"]) == [1.0]
