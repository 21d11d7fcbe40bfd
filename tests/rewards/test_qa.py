"""Question-answering presets: tables of (completion, row columns, params) -> expected score, a
comment per case."""
from __future__ import annotations

import pytest

from rewards import Markers, RewardError, build_reward

M = Markers()


def score(reward_id, completion, columns, params):
    reward = build_reward(reward_id, params, M)
    return reward([completion], **{k: [v] for k, v in columns.items()})[0]


EXACT_MATCH = [
    # case, punctuation and articles are ignored
    ("<answer>The Nile.</answer>", {"reference": "nile"}, {}, 1.0),
    # an extra word is not an exact match
    ("<answer>Nile river</answer>", {"reference": "nile"}, {}, 0.0),
    # without normalise only surrounding spaces are ignored
    ("<answer>The Nile.</answer>", {"reference": "nile"}, {"normalise": False}, 0.0),
    ("<answer> Nile </answer>", {"reference": "Nile"}, {"normalise": False}, 1.0),
    # without markers the whole completion is the answer
    ("Paris", {"reference": "paris"}, {}, 1.0),
    # the reasoning outside the markers does not count
    ("<think>maybe Rome</think><answer>Paris</answer>", {"reference": "Paris"}, {}, 1.0),
    # one of several acceptable answers
    ("<answer>new york city</answer>", {"reference": ["NYC", "New York City"]}, {}, 1.0),
    # a row without a reference is skipped
    ("<answer>Paris</answer>", {"reference": None}, {}, None),
    # an empty list of references is no reference
    ("<answer>Paris</answer>", {"reference": []}, {}, None),
]

TOKEN_F1 = [
    # the same words
    ("<answer>the Nile</answer>", {"reference": "Nile"}, {}, 1.0),
    # one extra word: precision 1/2, recall 1
    ("<answer>the river Nile</answer>", {"reference": "Nile"}, {}, pytest.approx(2 / 3)),
    # one word missing: precision 1, recall 2/3
    ("<answer>New York</answer>", {"reference": "New York City"}, {}, pytest.approx(0.8)),
    # no word in common
    ("<answer>Paris</answer>", {"reference": "Rome"}, {}, 0.0),
    # an empty answer
    ("<answer></answer>", {"reference": "Rome"}, {}, 0.0),
    # the best of several references
    ("<answer>NYC</answer>", {"reference": ["New York", "NYC"]}, {}, 1.0),
    # a row without a reference is skipped
    ("<answer>Paris</answer>", {"reference": ""}, {}, None),
]

KEYWORD_COVERAGE = [
    # every keyword of the parameter
    ("Water boils at 100 C", {}, {"keyword_list": "boils, 100"}, 1.0),
    # half of them
    ("Water boils at 100 C", {}, {"keyword_list": "boils, pressure"}, 0.5),
    # case does not matter
    ("WATER BOILS", {}, {"keyword_list": "water,boils"}, 1.0),
    # whole words only: "boil" is not found in "boiling"
    ("The boiling point", {}, {"keyword_list": "boil"}, 0.0),
    # phrases match across extra spaces
    ("the boiling   point", {}, {"keyword_list": "boiling point"}, 1.0),
    # keywords from the row's keywords column, as a list
    ("oxygen and hydrogen", {"keywords": ["Oxygen", "Hydrogen", "carbon"]}, {},
     pytest.approx(2 / 3)),
    # ... or as comma-separated text
    ("oxygen and hydrogen", {"keywords": "oxygen, carbon"}, {}, 0.5),
    # keywords from a column chosen by keywords_field
    ("oxygen", {"terms": ["oxygen"]}, {"keywords_field": "terms"}, 1.0),
    # only the answer counts when the solution markers are there
    ("<think>oxygen</think><answer>hydrogen</answer>", {"keywords": ["oxygen"]}, {}, 0.0),
    # a row without keywords is skipped
    ("oxygen", {"keywords": None}, {}, None),
    ("oxygen", {"keywords": []}, {}, None),
]

TABLES = {"exact_match": EXACT_MATCH, "token_f1": TOKEN_F1, "keyword_coverage": KEYWORD_COVERAGE}


@pytest.mark.parametrize("completion,columns,params,expected", EXACT_MATCH)
def test_exact_match(completion, columns, params, expected):
    assert score("exact_match", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", TOKEN_F1)
def test_token_f1(completion, columns, params, expected):
    assert score("token_f1", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", KEYWORD_COVERAGE)
def test_keyword_coverage(completion, columns, params, expected):
    assert score("keyword_coverage", completion, columns, params) == expected


ERRORS = [
    # no reference column
    ("exact_match", {}, {}, "map a reference column"),
    ("token_f1", {}, {}, "map a reference column"),
    # no keywords column and no keyword_list
    ("keyword_coverage", {}, {}, "column 'keywords'"),
    # normalise must be true or false
    ("exact_match", {"reference": "x"}, {"normalise": 1}, "expected true or false"),
]


@pytest.mark.parametrize("reward_id,columns,params,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, columns, params, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, "<answer>x</answer>", columns, params)
