"""Answer correctness against the dataset's `reference` (math and question answering).

The answer is read from inside the solution markers when they are present (otherwise from the whole
completion, unless `require_markers`). Numeric references compare the last number of the answer with
a relative tolerance; other references compare normalised text. A row without a reference scores
None (TRL leaves it out of the mean); a batch with no `reference` at all is an error, never a
silent 0.
"""
from __future__ import annotations

from typing import Any

from rewards.parsing import as_number, between, last_number, normalise_text
from rewards.registry import Markers, Param, RewardError, register


def _answer_text(completion: str, markers: Markers, require_markers: bool) -> str | None:
    inside = between(completion, markers.solution_start, markers.solution_end)
    if inside is not None:
        return inside
    return None if require_markers else completion


def _score(answer: str | None, reference: Any, mode: str, tolerance: float) -> float | None:
    if reference is None or str(reference).strip() == "":
        return None
    if answer is None:
        return 0.0
    ref_value = as_number(str(reference)) if mode != "text" else None
    if ref_value is not None:
        got = last_number(answer)
        ok = got is not None and abs(got - ref_value) <= tolerance * max(1.0, abs(ref_value))
        return 1.0 if ok else 0.0
    if mode == "numeric":
        return 0.0
    return 1.0 if normalise_text(answer) == normalise_text(str(reference)) else 0.0


@register("answer_correct", name="Correct answer", category="math",
          description="1 when the answer (inside the solution markers, else the whole "
                      "completion) equals the reference: numbers within a relative tolerance, "
                      "with commas, currency and units ignored; text after normalisation.",
          params=(Param("mode", "auto", "auto: numeric when the reference is a number, "
                        "else text.", choices=("auto", "numeric", "text")),
                  Param("tolerance", 1e-4, "Relative tolerance for numbers.", 0.0, 1.0),
                  Param("require_markers", False, "Score 0 when the solution markers are "
                        "missing.")),
          needs=("reference",), uses_markers=True)
def answer_correct(completions: list[str], reference: list[Any] | None = None, *,
                   markers: Markers, mode: str = "auto", tolerance: float = 1e-4,
                   require_markers: bool = False, **_: Any) -> list[float | None]:
    """>>> answer_correct(["<answer>1,200</answer>"], reference=["1200"], markers=Markers())
    [1.0]
    """
    if reference is None:
        raise RewardError("answer_correct needs the dataset's reference answers, but none reached "
                          "it: map a reference column (dataset.mapping.reference)")
    return [_score(_answer_text(c, markers, require_markers), r, mode, tolerance)
            for c, r in zip(completions, reference)]
