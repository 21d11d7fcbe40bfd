"""Writing presets: tables of (completion, row columns, params) -> expected score, a comment per
case."""
from __future__ import annotations

import pytest

from rewards import Markers, RewardError, build_reward

M = Markers()
APA = "Smith, J. (2020). Deep nets for all. Journal of AI. https://doi.org/10.1000/xyz"


def score(reward_id, completion, columns, params):
    reward = build_reward(reward_id, params, M)
    return reward([completion], **{k: [v] for k, v in columns.items()})[0]


LENGTH_BAND = [
    # inside the band
    ("one two three", {}, {"min_length": 2, "max_length": 5}, 1.0),
    # below: proportional
    ("one", {}, {"min_length": 2, "max_length": 5}, 0.5),
    # above: falls to 0 at twice the maximum
    ("a b c d e f g", {}, {"min_length": 1, "max_length": 5}, pytest.approx(0.6)),
    ("a " * 20, {}, {"min_length": 1, "max_length": 5}, 0.0),
    # characters instead of words
    ("abcd", {}, {"min_length": 1, "max_length": 4, "unit": "characters"}, 1.0),
    ("", {}, {"min_length": 1, "max_length": 4, "unit": "characters"}, 0.0),
    # tokens: the trainer's completion_ids are counted when given
    ("a" * 400, {"completion_ids": [1, 2, 3]}, {"min_length": 1, "max_length": 5,
                                                "unit": "tokens"}, 1.0),
    # tokens without ids: estimated as characters / 4 (40 characters: 10 tokens)
    ("a" * 40, {}, {"min_length": 1, "max_length": 5, "unit": "tokens"}, 0.0),
    ("a" * 8, {}, {"min_length": 1, "max_length": 5, "unit": "tokens"}, 1.0),
]

REPETITION = [
    # no trigram repeats
    ("the cat sat on the mat", {}, {}, 1.0),
    # "a b c" comes twice among four trigrams
    ("a b c a b c", {}, {}, 0.75),
    # the same word five times, n = 1
    ("go go go go go", {}, {"n": 1}, pytest.approx(0.2)),
    # case and punctuation do not hide a repeat
    ("Hello, hello. HELLO!", {}, {"n": 1}, pytest.approx(1 / 3)),
    # shorter than n words: nothing can repeat
    ("hi there", {}, {}, 1.0),
    ("", {}, {}, 1.0),
]

CONCISENESS = [
    # as long as the reference
    ("<answer>Paris</answer>", {"reference": "Paris"}, {}, 1.0),
    # up to ratio x the reference (3 words for 2 at ratio 1.5)
    ("<answer>the city Paris</answer>", {"reference": "in Paris"}, {}, 1.0),
    # halfway between ratio and twice ratio (3 words for 2 at ratio 1)
    ("<answer>the city Paris</answer>", {"reference": "in Paris"}, {"ratio": 1.0}, 0.5),
    # twice ratio or more: 0
    ("<answer>it is in Paris</answer>", {"reference": "in Paris"}, {"ratio": 1.0}, 0.0),
    # without markers the whole completion is measured
    ("Well, the answer is Paris", {"reference": "Paris"}, {}, 0.0),
    # the reasoning outside the markers is not measured
    ("<think>" + "long " * 50 + "</think><answer>Paris</answer>", {"reference": "Paris"}, {}, 1.0),
    # an empty answer is not concise, it is missing
    ("<answer></answer>", {"reference": "Paris"}, {}, 0.0),
    # a row without a reference is skipped
    ("<answer>Paris</answer>", {"reference": None}, {}, None),
    ("<answer>Paris</answer>", {"reference": ""}, {}, None),
]

CITATION_FORMAT = [
    # author, year, title (after "(2020). ") and DOI link
    (APA, {}, {}, 1.0),
    # author and year only
    ("as shown by Smith et al. 2020", {}, {}, 0.5),
    # a quoted title and a year
    ('"Attention Is All You Need" (2017)', {}, {}, 0.5),
    # an italic title, an author and a year
    ("*Deep Learning* by Goodfellow, I., 2016", {}, {}, 0.75),
    # a bare DOI
    ("see doi:10.1000/182", {}, {}, 0.25),
    # a web address
    ("see https://example.com/paper", {}, {}, 0.25),
    # a five-digit number is not a year
    ("in 12345 cases", {}, {}, 0.0),
    # a comma after a capitalised word is not an author
    ("Yes, Paris is the capital.", {}, {}, 0.0),
    # no citation at all
    ("No citation here.", {}, {}, 0.0),
]

TABLES = {"length_band": LENGTH_BAND, "repetition": REPETITION, "conciseness": CONCISENESS,
          "citation_format": CITATION_FORMAT}


@pytest.mark.parametrize("completion,columns,params,expected", LENGTH_BAND)
def test_length_band(completion, columns, params, expected):
    assert score("length_band", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", REPETITION)
def test_repetition(completion, columns, params, expected):
    assert score("repetition", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", CONCISENESS)
def test_conciseness(completion, columns, params, expected):
    assert score("conciseness", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", CITATION_FORMAT)
def test_citation_format(completion, columns, params, expected):
    assert score("citation_format", completion, columns, params) == expected


ERRORS = [
    # a band whose minimum is above its maximum
    ("length_band", {}, {"min_length": 10, "max_length": 5}, "min_length 10 is above"),
    # an unknown unit
    ("length_band", {}, {"unit": "pages"}, "not one of"),
    # no reference column
    ("conciseness", {}, {}, "map a reference column"),
    # n beyond its maximum
    ("repetition", {}, {"n": 11}, "above the maximum"),
]


@pytest.mark.parametrize("reward_id,columns,params,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, columns, params, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, "<answer>Paris</answer>", columns, params)
