"""Failures become one line a person can act on."""
from __future__ import annotations

import pytest

from core.config import ConfigError
from core.datasets import DatasetError
from core.errors import describe_error

CASES = [
    # our own errors already say what to fix
    (DatasetError("dataset file not found: x.jsonl"), "dataset file not found: x.jsonl"),
    (ConfigError([{"field": "training.batch_size", "message": "too big"}]),
     "training.batch_size: too big"),
    # out of memory names the step and the settings to lower
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "Out of memory at step 7 (grpo)"),
    (MemoryError(), "lower training.batch_size"),
    # anything else: its type and first line, and where the traceback is
    (ValueError("bad thing\nmore detail"), "ValueError at step 7 (grpo): bad thing (full trace"),
    (KeyboardInterrupt(), "Interrupted at step 7"),
]


@pytest.mark.parametrize("err,expected", CASES)
def test_describe_error(err, expected):
    line = describe_error(err, "grpo", 7)
    assert expected in line and "\n" not in line
