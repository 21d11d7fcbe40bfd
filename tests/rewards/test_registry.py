"""The registry: the catalog's completeness and metadata, parameter checks, pickling for TRL."""
from __future__ import annotations

import pickle

import pytest

from rewards import Markers, RewardError, build_reward, get_spec, list_rewards
from tests.rewards import (test_formatting, test_mathematics, test_programming, test_qa,
                           test_reasoning, test_writing)

M = Markers()
CATEGORIES = {"math", "programming", "reasoning", "format", "qa", "writing"}
TABLES = {rid: table for module in (test_formatting, test_mathematics, test_programming, test_qa,
                                    test_reasoning, test_writing)
          for rid, table in module.TABLES.items()}
CATALOG = list_rewards()


def test_catalog_has_at_least_sixteen_presets_in_every_category():
    assert len(CATALOG) >= 16
    assert {r["category"] for r in CATALOG} == CATEGORIES


@pytest.mark.parametrize("reward", CATALOG, ids=lambda r: r["id"])
def test_every_preset_is_described_and_tested(reward):
    assert reward["name"] and reward["description"].strip()
    assert TABLES.get(reward["id"]), f"no test table covers {reward['id']!r}"


@pytest.mark.parametrize("reward", CATALOG, ids=lambda r: r["id"])
def test_every_preset_builds_with_its_defaults(reward):
    low, high = reward["range"]
    assert low < high
    assert build_reward(reward["id"], {}, M).__name__ == reward["id"]


@pytest.mark.parametrize("reward_id", sorted(TABLES))
def test_expected_scores_lie_in_the_declared_range(reward_id):
    low, high = get_spec(reward_id).range
    for case in TABLES[reward_id]:
        expected = getattr(case[-1], "expected", case[-1])  # unwrap pytest.approx
        assert expected is None or low <= expected <= high


def test_catalog_lists_metadata():
    catalog = {r["id"]: r for r in CATALOG}
    assert catalog["answer_correct"]["needs"] == ["reference"]
    assert {p["name"] for p in catalog["length_band"]["parameters"]} == \
        {"min_length", "max_length", "unit"}
    assert catalog["passes_tests"]["fields"] == ["tests"]


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


def test_built_rewards_are_picklable_and_named_for_trl():
    reward = pickle.loads(pickle.dumps(build_reward("format_markers", {}, M, name="fmt")))
    assert reward.__name__ == "fmt"
    assert reward(["<think>a</think><answer>1</answer>"]) == [1.0]
