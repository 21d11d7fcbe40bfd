"""GRPO Studio's ML engine (no Flask). `from core import train; train("configs/examples/quickstart.json")`.

Importing `core` is light: torch and TRL load only when training starts.
"""
from __future__ import annotations

from typing import Any


def train(config: Any, outputs: str = "outputs", show_progress: bool = True) -> Any:
    """Train from a config path, dict or RunConfig; returns a `core.cli.RunResult`."""
    from core.cli import train as _train
    return _train(config, outputs, show_progress)


def resume(run_dir: Any, show_progress: bool = True) -> Any:
    """Continue a run directory from its newest complete checkpoint."""
    from core.cli import resume as _resume
    return _resume(run_dir, show_progress)


__all__ = ["train", "resume"]
