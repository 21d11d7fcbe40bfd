"""Reasoning rewards: reasoning between the markers, written in steps, before the answer.

The reasoning is the text between the template's reasoning markers; when only the end marker is
present (chat templates that put the start marker in the prompt), the text before it.

Guarantees: scores between 0 and 1 with partial credit for short reasoning and few steps; a
template without the markers a reward needs raises RewardError rather than scoring 0. Does not:
judge whether the reasoning is right.
"""
from __future__ import annotations

import re
from typing import Any

from rewards.parsing import between
from rewards.registry import Markers, Param, RewardError, register

# "Step 3" anywhere; at the start of a line "1." / "2)", bullets, and "First," / "Next:" ...
_STEP_ANYWHERE = re.compile(r"\bstep\s+\d+", re.IGNORECASE)
_STEP_LINE = re.compile(r"^\s*(?:\d+[.)](?=\s|$)|[-*•+]\s+\S|(?:first|second|third|fourth|fifth|"
                        r"next|then|finally|lastly)\s*[,:])", re.IGNORECASE | re.MULTILINE)


def _require(reward_id: str, **markers: str) -> None:
    missing = [name for name, value in markers.items() if not value]
    if missing:
        raise RewardError(f"reward {reward_id!r} needs the template's "
                          f"{' and '.join(missing)} marker; set template.{missing[0]}")


def reasoning_text(text: str, markers: Markers) -> str | None:
    """The reasoning (see the module docstring), or None when the markers are missing."""
    inside = between(text, markers.reasoning_start, markers.reasoning_end)
    if inside is not None:
        return inside
    end = text.find(markers.reasoning_end) if markers.reasoning_end else -1
    unopened = not markers.reasoning_start or markers.reasoning_start not in text
    return text[:end] if end >= 0 and unopened else None


@register("reasoning_present", name="Reasoning present", category="reasoning",
          description="1 when the reasoning markers hold at least min_words words, partial "
                      "credit (words / min_words) below that, 0 when the markers are missing "
                      "or empty.",
          params=(Param("min_words", 20, "Words of reasoning that score 1.", 1, 10_000),),
          uses_markers=True)
def reasoning_present(completions: list[str], *, markers: Markers, min_words: int = 20,
                      **_: Any) -> list[float]:
    """>>> reasoning_present(["<think>add two and two</think>4"], markers=Markers(), min_words=4)
    [1.0]
    """
    _require("reasoning_present", reasoning_end=markers.reasoning_end)
    counts = (len((reasoning_text(t, markers) or "").split()) for t in completions)
    return [min(n / min_words, 1.0) for n in counts]


def count_steps(text: str) -> int:
    """Steps written as 'Step 1', numbered or bulleted lines, or lines opening 'First,' ..."""
    lines_without_step = _STEP_ANYWHERE.sub("", text)
    return len(_STEP_ANYWHERE.findall(text)) + len(_STEP_LINE.findall(lines_without_step))


@register("step_markers", name="Step-by-step reasoning", category="reasoning",
          description="Counts the steps in the reasoning (or the whole completion without "
                      "markers): 'Step 1', numbered or bulleted lines, lines opening with 'First,' "
                      "'Next,' 'Finally,' ... 1 with at least min_steps steps, steps / min_steps "
                      "below, 0 with none.",
          params=(Param("min_steps", 3, "Steps that score 1.", 1, 100),), uses_markers=True)
def step_markers(completions: list[str], *, markers: Markers, min_steps: int = 3,
                 **_: Any) -> list[float]:
    """>>> step_markers(["Step 1: add. Step 2: carry. Step 3: done."], markers=Markers())
    [1.0]
    """
    texts = (reasoning_text(t, markers) or t for t in completions)
    return [min(count_steps(t) / min_steps, 1.0) for t in texts]


def _reasoning_first(text: str, markers: Markers) -> bool:
    end, start = text.find(markers.reasoning_end), text.find(markers.solution_start)
    return 0 <= end and end + len(markers.reasoning_end) <= start


@register("reasoning_before_answer", name="Reasoning before the answer", category="reasoning",
          description="1 when the reasoning end marker comes before the solution start marker; "
                      "0 when either is missing or the first answer comes before the reasoning "
                      "ends.", uses_markers=True)
def reasoning_before_answer(completions: list[str], *, markers: Markers,
                            **_: Any) -> list[float]:
    """>>> reasoning_before_answer(["<think>x</think><answer>1</answer>"], markers=Markers())
    [1.0]
    """
    _require("reasoning_before_answer", reasoning_end=markers.reasoning_end,
             solution_start=markers.solution_start)
    return [float(_reasoning_first(t, markers)) for t in completions]
