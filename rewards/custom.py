"""User-written rewards: Python source defining `def reward(completions, **kwargs) -> list[float]`,
run through rewards/sandbox.py, one process per batch, by training and by the testing page alike.

Guarantees: a custom reward is named for TRL's logs (`rewards/<name>/mean`), picklable, and any
failure (syntax, exception, timeout, memory, a refused operation, a crash) is a RewardError whose
message names the reward, the row when it is known, and the cause. Keeps what the code printed
(`last_output`) for the testing page.

Does not: check the number or the values of the scores (rewards.registry.check_scores does, for
every reward), or store sources (services/rewards.py keeps the library of saved ones).
"""
from __future__ import annotations

import re
from typing import Any

from rewards.registry import RewardError
from rewards.sandbox import Limits, SandboxError, check_source, run_reward

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")


def check_name(name: str) -> None:
    if not NAME.fullmatch(name or ""):
        raise RewardError(f"a custom reward's name must start with a letter or _ and hold only "
                          f"letters, digits, _ and - (at most 64): {name!r}")


class CustomReward:
    """A custom reward with its parameters fixed; calls run in the sandbox."""

    def __init__(self, name: str, source: str, params: dict[str, Any] | None = None,
                 limits: Limits = Limits()):
        check_name(name)
        try:
            check_source(source)
        except SandboxError as err:
            raise describe(name, err) from None
        self.__name__, self.source = name, source
        self.params, self.limits = dict(params or {}), limits
        self.last_output = ""

    def __call__(self, completions: list[str], **kwargs: Any) -> list[float | None]:
        try:
            scores, self.last_output = run_reward(self.source, list(completions),
                                                  {**kwargs, **self.params}, self.limits)
        except SandboxError as err:
            self.last_output = err.output
            raise describe(self.__name__, err, list(completions)) from None
        return scores

    def __repr__(self) -> str:
        return f"CustomReward({self.__name__!r})"


def describe(name: str, err: SandboxError, batch: list[str] | None = None) -> SandboxError:
    """The sandbox's error, reworded to name the reward, the row (1-based, with the start of its
    completion, since a batch row is found by its text) and the line."""
    where = f" while scoring {len(batch)} completions" if batch else ""
    if err.row is not None:
        text = batch[err.row] if batch and err.row < len(batch) else ""
        shown = repr(text[:60]) + ("…" if len(text) > 60 else "")
        where = f" on row {err.row + 1}" + (f" (completion {shown})" if text else "")
    line = f" (line {err.line})" if err.line and err.kind != "syntax" else ""
    cause = str(err)
    message = f"custom reward {name!r} failed{where}: {cause}{line}"
    if err.kind == "syntax":
        message = f"custom reward {name!r} does not compile: {cause}"
    return SandboxError(message, err.kind, err.line, err.output, err.row)
