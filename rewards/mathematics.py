"""Maths rewards: the answer equals the reference, sits inside the solution markers, has its unit.

Answers are read from inside the solution markers when present (else the whole completion).
Equivalence is math_verify's (the library TRL's accuracy reward uses): thousands separators,
currency, units, percentages, fractions against decimals and LaTeX such as `\\boxed{\\frac{3}{4}}`;
a relative `tolerance` accepts numbers a little off on top of its own rounding. References that
math_verify cannot read (names, words) are compared as normalised text.

Guarantees: safe to call from any thread (math_verify's signal-based timeouts are used only in the
main thread, where they work); a row without a reference scores None, a batch without the
reference column raises RewardError. Does not: judge the reasoning, or accept an answer that is
merely close in wording.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from rewards.parsing import answer_text, between, is_blank, normalise_text, references
from rewards.registry import Markers, Param, RewardError, register

_TIMEOUT_SECONDS = 5
# The text after the first number of a reference such as "12 kg", "3.5 km/h", "45%" or "9 m^2".
_UNIT_AFTER_NUMBER = re.compile(r"^\D*?\d[\d.,/]*\s*(.*?)[\s.]*$", re.DOTALL)


def _timeout() -> int | None:
    """math_verify times out with signal.alarm, which only works in the main thread."""
    return _TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


def _parse(text: str) -> list:
    from math_verify import parse  # imported when first used: the web process lists, never runs
    return parse(text, parsing_timeout=_timeout())


def _within(gold: list, pred: list, tolerance: float) -> bool:
    """Both parse to plain numbers and differ by at most `tolerance` relative to the reference."""
    if not (gold and pred and tolerance > 0):
        return False
    try:
        want, got = complex(gold[0]), complex(pred[0])
    except (TypeError, ValueError, OverflowError):
        return False
    return abs(got - want) <= tolerance * abs(want)


def _equivalent(answer: str, reference: str, tolerance: float) -> bool:
    gold = _parse(reference)
    if not gold:
        return normalise_text(answer) == normalise_text(reference)
    pred = _parse(answer)
    if not pred:
        return False
    from math_verify import verify
    return verify(gold, pred, timeout_seconds=_timeout()) or _within(gold, pred, tolerance)


@register("answer_correct", name="Correct answer", category="math",
          description="1 when the answer (inside the solution markers, else the whole "
                      "completion) equals the reference: as maths (commas, currency, units, "
                      "percentages, fractions, LaTeX; numbers within the relative tolerance), or "
                      "as normalised text when the reference is not maths. 0 otherwise.",
          params=(Param("tolerance", 1e-4, "Relative tolerance for numbers (0: exact, up to "
                        "six decimals).", 0.0, 0.5),
                  Param("require_markers", False, "Score 0 when the solution markers are "
                        "missing.")),
          needs=("reference",), uses_markers=True)
def answer_correct(completions: list[str], *, markers: Markers, tolerance: float = 1e-4,
                   require_markers: bool = False, **kwargs: Any) -> list[float | None]:
    """>>> answer_correct(["<answer>$1,200</answer>"], reference=["1200"], markers=Markers())
    [1.0]
    """
    refs = references(kwargs, len(completions), "answer_correct")
    scores: list[float | None] = []
    for completion, ref in zip(completions, refs):
        answer = answer_text(completion, markers, require_markers)
        if is_blank(ref):
            scores.append(None)
        else:
            scores.append(float(answer is not None and _equivalent(answer, str(ref), tolerance)))
    return scores


def _require_solution_markers(reward_id: str, markers: Markers) -> None:
    if not (markers.solution_start and markers.solution_end):
        raise RewardError(f"reward {reward_id!r} looks for the solution markers, but the "
                          f"template has none; set template.solution_start and solution_end")


@register("solution_in_markers", name="Answer inside the solution markers", category="math",
          description="1 when the completion has the solution markers with a non-empty answer "
                      "between them; 0 when they are missing or empty.",
          uses_markers=True)
def solution_in_markers(completions: list[str], *, markers: Markers,
                        **_: Any) -> list[float]:
    """>>> solution_in_markers(["<answer> 4 </answer>", "4"], markers=Markers())
    [1.0, 0.0]
    """
    _require_solution_markers("solution_in_markers", markers)
    inside = (between(c, markers.solution_start, markers.solution_end) for c in completions)
    return [float(bool(text and text.strip())) for text in inside]


def unit_of(reference: Any) -> str | None:
    """The text after the reference's number ('12 kg' -> 'kg'); None when there is none."""
    match = _UNIT_AFTER_NUMBER.match(str(reference or "").strip())
    return match.group(1).strip() or None if match else None


def _carries_unit(answer: str, unit: str) -> bool:
    # The unit may touch the number ("12kg", "45%"), but not other letters ("kgs" is not "kg").
    pattern = r"(?<![^\W\d_])" + re.escape(unit) + r"(?![^\W\d_])"
    return re.search(pattern, answer, re.IGNORECASE) is not None


@register("unit_present", name="Answer carries its unit", category="math",
          description="1 when the answer (inside the solution markers, else the whole "
                      "completion) contains the expected unit: the unit parameter, or when it is "
                      "empty the text after the reference's number (reference '12 kg' needs "
                      "'kg'); 0 when the unit is missing. Rows without a unit are skipped.",
          params=(Param("unit", "", "The unit every answer needs (e.g. km/h); empty: read it "
                        "from each row's reference."),),
          uses_markers=True)
def unit_present(completions: list[str], *, markers: Markers, unit: str = "",
                 **kwargs: Any) -> list[float | None]:
    """>>> unit_present(["<answer>12 kg</answer>"], reference=["12 kg"], markers=Markers())
    [1.0]
    """
    if unit.strip():
        units: list[str | None] = [unit.strip()] * len(completions)
    else:
        units = [unit_of(r) for r in references(kwargs, len(completions), "unit_present")]
    return [None if u is None else float(_carries_unit(answer_text(c, markers) or "", u))
            for c, u in zip(completions, units)]

