"""Length rewards: a completion inside a band of words or characters scores 1, falling off
linearly outside it (to 0 at zero length below, and at twice the maximum above)."""
from __future__ import annotations

from typing import Any

from rewards.registry import Param, RewardError, register


def _band_score(n: int, low: int, high: int) -> float:
    if n < low:
        return n / low if low else 1.0
    if n > high:
        return max(0.0, 1.0 - (n - high) / max(high, 1))
    return 1.0


@register("length_band", name="Length in a band", category="writing",
          description="1 when the completion's length is between min and max (in words or "
                      "characters), falling linearly outside.",
          params=(Param("min_length", 5, "Shortest length that scores 1.", 0, 100_000),
                  Param("max_length", 200, "Longest length that scores 1.", 1, 1_000_000),
                  Param("unit", "words", "Count words or characters.",
                        choices=("words", "characters"))))
def length_band(completions: list[str], *, min_length: int = 5, max_length: int = 200,
                unit: str = "words", **_: Any) -> list[float]:
    """>>> length_band(["one two three"], min_length=1, max_length=5)
    [1.0]
    """
    if min_length > max_length:
        raise RewardError(f"length_band: min_length {min_length} is above max_length {max_length}")
    count = (lambda t: len(t.split())) if unit == "words" else len
    return [_band_score(count(t), min_length, max_length) for t in completions]
