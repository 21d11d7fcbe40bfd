"""Format presets: tables of (completion, params) -> expected score, a comment per case."""
from __future__ import annotations

import json

import pytest

from rewards import Markers, RewardError, build_reward

M = Markers()
NEEDS_ANSWER = json.dumps({"type": "object", "required": ["answer"]})


def score(reward_id, completion, params, markers=M):
    return build_reward(reward_id, params, markers)([completion])[0]


FORMAT_MARKERS = [
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
    # strict: text after the solution end
    ("<think>a</think><answer>1</answer> more words", {"strict": True}, 0.0),
    # strict: markers missing
    ("<think>a</think>", {"strict": True}, 0.0),
]

VALID_JSON = [
    # the whole completion is a JSON object
    ('{"a": 1}', {}, 1.0),
    # a json fenced block among prose
    ('Here it is:\n```json\n{"a": [1, 2]}\n```', {}, 1.0),
    # JSON inside the solution markers
    ("<think>list them</think><answer>[1, 2]</answer>", {}, 1.0),
    # keys without quotes are not JSON
    ("{a: 1}", {}, 0.0),
    # prose after the JSON, with no block or markers around it
    ('{"a": 1} as asked', {}, 0.0),
    # nothing
    ("", {}, 0.0),
    # without a schema any JSON value counts, a bare number too
    ("42", {}, 1.0),
    # the schema is met
    ('{"answer": 4}', {"schema": NEEDS_ANSWER}, 1.0),
    # the schema's required key is missing
    ('{"result": 4}', {"schema": NEEDS_ANSWER}, 0.0),
    # a bare number is not the object the schema wants
    ("42", {"schema": NEEDS_ANSWER}, 0.0),
]

MARKDOWN_STRUCTURE = [
    # a header and two list items
    ("# Plan\n- one\n- two", {}, 1.0),
    # the header only: half of the credit
    ("# Plan\nJust prose.", {}, 0.5),
    # one of two list items, no header
    ("- one", {}, 0.25),
    # plain prose
    ("plain text", {}, 0.0),
    # a hashtag is not a header
    ("#hashtag\n- a\n- b", {}, 0.5),
    # comments and dashes inside a code block do not count
    ("```python\n# comment\n- x\n```", {}, 0.0),
    # numbered items are list items; no header wanted
    ("1. one\n2) two", {"min_headers": 0}, 1.0),
    # more than wanted is still capped at 1
    ("## A\n## B\n- a\n- b\n- c", {}, 1.0),
]

TABLES = {"format_markers": FORMAT_MARKERS, "valid_json": VALID_JSON,
          "markdown_structure": MARKDOWN_STRUCTURE}


@pytest.mark.parametrize("completion,params,expected", FORMAT_MARKERS)
def test_format_markers(completion, params, expected):
    assert score("format_markers", completion, params) == expected


def test_format_markers_skips_empty_markers():
    assert score("format_markers", "<a>1</a>", {}, Markers("", "", "<a>", "</a>")) == 1.0


@pytest.mark.parametrize("completion,params,expected", VALID_JSON)
def test_valid_json(completion, params, expected):
    assert score("valid_json", completion, params) == expected


@pytest.mark.parametrize("completion,params,expected", MARKDOWN_STRUCTURE)
def test_markdown_structure(completion, params, expected):
    assert score("markdown_structure", completion, params) == expected


ERRORS = [
    # a schema that is not JSON
    ("valid_json", {"schema": "{type: object}"}, "parameter 'schema' is not JSON"),
    # JSON that is not a valid schema
    ("valid_json", {"schema": '{"type": "banana"}'}, "parameter 'schema' is not a valid"),
    # a schema that is a number
    ("valid_json", {"schema": "5"}, "parameter 'schema' is not a valid"),
    # nothing to look for
    ("markdown_structure", {"min_headers": 0, "min_list_items": 0}, "both 0"),
    # strict must be true or false
    ("format_markers", {"strict": "yes"}, "expected true or false"),
]


@pytest.mark.parametrize("reward_id,params,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, params, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, '{"answer": 1}', params)
