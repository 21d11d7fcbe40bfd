"""Programming rewards: a fenced code block, Python that parses, defines the expected function,
passes the row's tests and imports no forbidden module.

The code is the first fenced block tagged python (or py / python3), else the first untagged
fenced block, else the whole completion. Only `passes_tests` runs code, in the sandbox process
(rewards.sandbox) with a timeout and resource limits; the others read the syntax tree.

Guarantees: scores between 0 and 1; code that does not parse scores 0; rows without tests or
without a function name score None; a batch missing the column a parameter names raises
RewardError. Does not: make `no_forbidden_imports` a security boundary (dynamic tricks such as
getattr on builtins pass it) or judge code quality.
"""
from __future__ import annotations

import ast
from typing import Any

from rewards.parsing import column, fenced_blocks, is_blank, split_items
from rewards.registry import Param, RewardError, register
from rewards.sandbox import run_code_tests

_PYTHON_TAGS = ("python", "py", "python3")


def python_code(text: str) -> str:
    """The completion's Python code (see the module docstring for which text that is)."""
    blocks = fenced_blocks(text)
    for wanted in (_PYTHON_TAGS, ("",)):
        for language, body in blocks:
            if language in wanted:
                return body
    return text


def syntax_tree(code: str) -> ast.Module | None:
    """The parsed module, or None when the code is empty or does not parse."""
    if not code.strip():
        return None
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@register("code_block", name="Fenced code block", category="programming",
          description="1 when the completion has a non-empty ``` fenced code block (tagged with "
                      "the language, when one is given); 0 otherwise.",
          params=(Param("language", "", "Language tag the block needs (e.g. python); empty: "
                        "any block."),))
def code_block(completions: list[str], *, language: str = "", **_: Any) -> list[float]:
    """>>> code_block(["```python\\nx = 1\\n```"], language="python")
    [1.0]
    """
    wanted = language.strip().lower()
    return [float(any(body.strip() and (not wanted or tag == wanted)
                      for tag, body in fenced_blocks(text))) for text in completions]


@register("python_parses", name="Python parses", category="programming",
          description="1 when the completion's Python code (its first python fenced block, "
                      "else the whole completion) is non-empty and parses; 0 on a syntax error.")
def python_parses(completions: list[str], **_: Any) -> list[float]:
    """>>> python_parses(["```python\\ndef f():\\n    return 1\\n```", "def f(:"])
    [1.0, 0.0]
    """
    return [float(syntax_tree(python_code(text)) is not None) for text in completions]


def _defines(code: str, name: str) -> bool:
    tree = syntax_tree(code)
    return tree is not None and any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
        for node in tree.body)


@register("defines_function", name="Defines the function", category="programming",
          description="1 when the code defines, at top level, a function with the expected "
                      "name (the function_name parameter, else the row's entry point column); 0 "
                      "when it does not or does not parse. Rows without a name are skipped.",
          params=(Param("function_name", "", "Name every completion must define; empty: read "
                        "it from each row."),
                  Param("function_name_field", "entry_point", "Dataset column with each row's "
                        "function name.")))
def defines_function(completions: list[str], *, function_name: str = "",
                     function_name_field: str = "entry_point", **kwargs: Any
                     ) -> list[float | None]:
    """>>> defines_function(["def add(a, b):\\n    return a + b"], function_name="add")
    [1.0]
    """
    if function_name.strip():
        names: list[Any] = [function_name.strip()] * len(completions)
    else:
        names = column(kwargs, function_name_field, len(completions), "defines_function",
                       f"add a column {function_name_field!r} to the dataset or set the "
                       f"parameter function_name")
    return [None if is_blank(name) else float(_defines(python_code(text), str(name).strip()))
            for text, name in zip(completions, names)]


def row_tests(value: Any) -> list[str]:
    """A row's test cases: a list of statements, or one string with one statement per line
    (blank lines and # comments left out)."""
    lines = split_items(value, "\n") if isinstance(value, str) else split_items(value)
    return [line for line in lines if not line.startswith("#")]


@register("passes_tests", name="Passes the tests", category="programming",
          description="Share of the row's test cases (assert statements) that pass after the "
                      "completion's Python code runs in the sandbox: 1 when all pass, 0 when none "
                      "do or the code fails to parse, crashes or times out. Rows without tests "
                      "are skipped.",
          params=(Param("tests_field", "tests", "Dataset column with each row's test cases: "
                        "a list of asserts, or one text with one assert per line."),
                  Param("timeout_seconds", 5.0, "Time limit for one completion's code and "
                        "tests.", 0.5, 60.0)))
def passes_tests(completions: list[str], *, tests_field: str = "tests",
                 timeout_seconds: float = 5.0, **kwargs: Any) -> list[float | None]:
    """>>> passes_tests(["def f():\\n    return 1"], tests=[["assert f() == 1"]])
    [1.0]
    """
    rows = column(kwargs, tests_field, len(completions), "passes_tests",
                  f"add a column {tests_field!r} with each row's test cases to the dataset, or "
                  f"set the parameter tests_field")
    tests = [row_tests(value) for value in rows]
    codes = [python_code(text) for text in completions]
    runnable = [i for i, (code, t) in enumerate(zip(codes, tests))
                if t and syntax_tree(code) is not None]
    shares = dict(zip(runnable, run_code_tests([(codes[i], tests[i]) for i in runnable],
                                               timeout_seconds)))
    return [shares.get(i, 0.0) if tests[i] else None for i in range(len(completions))]


def _imported_modules(tree: ast.Module) -> list[str]:
    """Modules named by import statements, __import__('x') and importlib.import_module('x')."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
        elif isinstance(node, ast.Call) and node.args and _is_import_call(node.func):
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
    return found


def _is_import_call(func: ast.expr) -> bool:
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in ("__import__", "import_module")


def _clean(code: str, forbidden: list[str]) -> bool:
    tree = syntax_tree(code)
    if tree is None:
        return False
    return not any(module == bad or module.startswith(bad + ".")
                   for module in _imported_modules(tree) for bad in forbidden)


@register("no_forbidden_imports", name="No forbidden imports", category="programming",
          description="1 when the completion's Python code parses and imports none of the "
                      "forbidden modules (or their submodules); 0 when it imports one or does "
                      "not parse. A syntax check, not a security boundary.",
          params=(Param("forbidden", "os,sys,subprocess,shutil,socket,ctypes",
                        "Comma-separated module names the code must not import."),))
def no_forbidden_imports(completions: list[str], *,
                         forbidden: str = "os,sys,subprocess,shutil,socket,ctypes",
                         **_: Any) -> list[float]:
    """>>> no_forbidden_imports(["import math", "import os.path"], forbidden="os")
    [1.0, 0.0]
    """
    modules = split_items(forbidden)
    if not modules:
        raise RewardError("reward 'no_forbidden_imports' parameter 'forbidden' is empty; list "
                          "the modules to forbid, separated by commas")
    return [float(_clean(python_code(text), modules)) for text in completions]
