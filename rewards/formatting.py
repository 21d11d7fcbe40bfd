"""Format rewards: the run's reasoning and solution markers present and in order.

Partial credit (the share of markers found in order) gives GRPO a gradient long before a model
writes the whole format; `strict` gives 1 or 0 only.
"""
from __future__ import annotations

from typing import Any

from rewards.registry import Markers, Param, register


def _markers_in_order(text: str, markers: list[str]) -> int:
    found, pos = 0, 0
    for marker in markers:
        i = text.find(marker, pos)
        if i < 0:
            break
        found, pos = found + 1, i + len(marker)
    return found


@register("format_markers", name="Markers in order", category="format",
          description="Share of the template's markers (reasoning start/end, solution start/end) "
                      "that appear in order; with strict, 1 only when all do and nothing "
                      "follows the solution.",
          params=(Param("strict", False, "All-or-nothing, and no text after the solution end."),),
          uses_markers=True)
def format_markers(completions: list[str], *, markers: Markers, strict: bool = False,
                   **_: Any) -> list[float]:
    """>>> format_markers(["<think>x</think><answer>1</answer>"], markers=Markers())
    [1.0]
    """
    wanted = [m for m in (markers.reasoning_start, markers.reasoning_end,
                          markers.solution_start, markers.solution_end) if m]
    scores = []
    for text in completions:
        found = _markers_in_order(text, wanted)
        if strict:
            tail = text.rsplit(wanted[-1], 1)[-1].strip() if found == len(wanted) else "x"
            scores.append(1.0 if not tail else 0.0)
        else:
            scores.append(found / len(wanted) if wanted else 1.0)
    return scores
