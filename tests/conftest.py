"""Shared fixtures: the converted default model, a tiny random model built from its config, and
small config builders. Polling helpers wait with a deadline instead of sleeping blindly."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def tiny_config(model_dir: Path, /, **sections: dict[str, Any]) -> dict[str, Any]:
    """A GRPO config on the tiny model that takes about a second a step."""
    cfg: dict[str, Any] = {
        "model": {"name": str(model_dir), "lora_rank": 8, "lora_alpha": 16},
        "dataset": {"source": "builtin", "path": "arithmetic", "max_samples": 32},
        "training": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3,
                     "precision": "fp32"},
        "algorithm": {"num_generations": 4, "max_completion_length": 8},
        # a character band that random-token completions hit unevenly, so advantages are nonzero
        "rewards": [{"name": "length_band", "params": {"min_length": 1, "max_length": 30,
                                                       "unit": "characters"}},
                    {"name": "answer_correct"}, {"name": "format_markers"}],
        "output": {"name": "test", "save_steps": 100, "logging_steps": 1, "sample_every": 1},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
