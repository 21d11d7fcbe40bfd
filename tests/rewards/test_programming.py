"""Programming presets: tables of (completion, row columns, params) -> expected score, a comment
per case. `passes_tests` runs the real sandbox."""
from __future__ import annotations

import pytest

from rewards import Markers, RewardError, build_reward, get_spec

M = Markers()
ADD = "```python\ndef add(a, b):\n    return a + b\n```"


def score(reward_id, completion, columns, params):
    reward = build_reward(reward_id, params, M)
    return reward([completion], **{k: [v] for k, v in columns.items()})[0]


CODE_BLOCK = [
    # a python block, any language wanted
    (ADD, {}, {}, 1.0),
    # an untagged block
    ("```\nx = 1\n```", {}, {}, 1.0),
    # no fence at all
    ("x = 1", {}, {}, 0.0),
    # an empty block
    ("```python\n\n```", {}, {}, 0.0),
    # a fence that is never closed
    ("```python\nx = 1\n", {}, {}, 0.0),
    # the wrong language
    ("```js\nlet x = 1\n```", {}, {"language": "python"}, 0.0),
    # the language tag ignores case
    ("```Python\nx = 1\n```", {}, {"language": "python"}, 1.0),
]

PYTHON_PARSES = [
    # a python fenced block
    (ADD, {}, {}, 1.0),
    # the whole completion is code
    ("x = 1\nprint(x)", {}, {}, 1.0),
    # a syntax error
    ("def f(:\n    pass", {}, {}, 0.0),
    # prose is not code
    ("The answer is 4.", {}, {}, 0.0),
    # nothing at all
    ("", {}, {}, 0.0),
    # the python block is read, not the prose around it
    ("Here you go:\n```python\nx = 1\n```\nHope it helps!", {}, {}, 1.0),
    # a python block wins over an earlier untagged one
    ("```\nnot code at all\n```\n```py\nx = 1\n```", {}, {}, 1.0),
    # a broken python block fails even when other text would parse
    ("```python\nfor\n```", {}, {}, 0.0),
]

DEFINES_FUNCTION = [
    # the function named by the parameter
    (ADD, {}, {"function_name": "add"}, 1.0),
    # a different function
    (ADD, {}, {"function_name": "sub"}, 0.0),
    # the name from the row's entry_point column
    (ADD, {"entry_point": "add"}, {}, 1.0),
    # the name from a column chosen by function_name_field
    (ADD, {"fn": "add"}, {"function_name_field": "fn"}, 1.0),
    # async functions count
    ("async def add(a, b):\n    return a + b", {"entry_point": "add"}, {}, 1.0),
    # a method of a class is not a top-level function
    ("class A:\n    def add(self):\n        pass", {"entry_point": "add"}, {}, 0.0),
    # code that does not parse
    ("def add(a, b) return a + b", {"entry_point": "add"}, {}, 0.0),
    # a row without a name is skipped
    (ADD, {"entry_point": None}, {}, None),
]

PASSES_TESTS = [
    # every assert passes
    (ADD, {"tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}, {}, 1.0),
    # one of two passes
    (ADD, {"tests": ["assert add(1, 2) == 3", "assert add(1, 1) == 3"]}, {}, 0.5),
    # one text with one assert per line; blank lines and comments left out
    (ADD, {"tests": "# checks\nassert add(1, 2) == 3\n\nassert add(2, 2) == 5\n"}, {}, 0.5),
    # tests from a column chosen by tests_field
    (ADD, {"checks": ["assert add(2, 3) == 5"]}, {"tests_field": "checks"}, 1.0),
    # code that does not parse is not run
    ("def add(a, b) return a + b", {"tests": ["assert add(1, 2) == 3"]}, {}, 0.0),
    # code that crashes when it runs
    ("raise SystemExit(3)", {"tests": ["assert True"]}, {}, 0.0),
    # code that never ends is stopped at the timeout
    ("while True:\n    pass", {"tests": ["assert True"]}, {"timeout_seconds": 1.0}, 0.0),
    # a row without tests is skipped
    (ADD, {"tests": []}, {}, None),
    # ... also when the column holds nothing
    (ADD, {"tests": None}, {}, None),
]

NO_FORBIDDEN_IMPORTS = [
    # a harmless import
    ("import math\nprint(math.pi)", {}, {}, 1.0),
    # a forbidden module
    ("import os", {}, {}, 0.0),
    # from-imports count
    ("from subprocess import run", {}, {}, 0.0),
    # submodules of a forbidden module count
    ("import os.path", {}, {}, 0.0),
    # __import__ with a constant name
    ("m = __import__('socket')", {}, {}, 0.0),
    # importlib.import_module with a constant name
    ("import importlib\nimportlib.import_module('shutil')", {}, {}, 0.0),
    # a module whose name only starts like a forbidden one
    ("import osmosis", {}, {}, 1.0),
    # a custom list replaces the default one
    ("import os\nimport requests", {}, {"forbidden": "requests"}, 0.0),
    ("import os", {}, {"forbidden": "requests, urllib"}, 1.0),
    # code that does not parse scores 0
    ("import (", {}, {}, 0.0),
    # the python block is checked, not the prose around it
    ("Use this:\n```python\nimport sys\n```", {}, {}, 0.0),
]

TABLES = {"code_block": CODE_BLOCK, "python_parses": PYTHON_PARSES,
          "defines_function": DEFINES_FUNCTION, "passes_tests": PASSES_TESTS,
          "no_forbidden_imports": NO_FORBIDDEN_IMPORTS}


@pytest.mark.parametrize("completion,columns,params,expected", CODE_BLOCK)
def test_code_block(completion, columns, params, expected):
    assert score("code_block", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", PYTHON_PARSES)
def test_python_parses(completion, columns, params, expected):
    assert score("python_parses", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", DEFINES_FUNCTION)
def test_defines_function(completion, columns, params, expected):
    assert score("defines_function", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", PASSES_TESTS)
def test_passes_tests(completion, columns, params, expected):
    assert score("passes_tests", completion, columns, params) == expected


@pytest.mark.parametrize("completion,columns,params,expected", NO_FORBIDDEN_IMPORTS)
def test_no_forbidden_imports(completion, columns, params, expected):
    assert score("no_forbidden_imports", completion, columns, params) == expected


ERRORS = [
    # no entry_point column and no function_name parameter
    ("defines_function", {}, {}, "column 'entry_point'"),
    # no tests column
    ("passes_tests", {}, {}, "column 'tests'"),
    # a tests_field naming a column the batch lacks
    ("passes_tests", {"tests": ["assert True"]}, {"tests_field": "checks"}, "column 'checks'"),
    # an empty forbidden list would forbid nothing
    ("no_forbidden_imports", {}, {"forbidden": " , "}, "'forbidden' is empty"),
    # a time limit below its minimum
    ("passes_tests", {"tests": ["assert True"]}, {"timeout_seconds": 0}, "below the minimum"),
]


@pytest.mark.parametrize("reward_id,columns,params,message", ERRORS)
def test_errors_name_the_reward_and_the_fix(reward_id, columns, params, message):
    with pytest.raises(RewardError, match=message):
        score(reward_id, ADD, columns, params)


def test_fields_include_the_columns_the_parameters_name():
    assert get_spec("passes_tests").fields({"tests_field": "checks"}) == ["checks"]
    assert get_spec("defines_function").fields() == ["entry_point"]
