"""Helpers the presets share: reading answers and fenced blocks out of completions, dataset
columns and comma-separated lists out of a batch, and SQuAD-style text normalisation.

Guarantees: the text helpers never raise and return None (or an empty list) when nothing is
found; `column` raises a RewardError naming the reward and the column to map when a needed column
is missing from the batch. Does not: parse numbers or maths (rewards.mathematics uses math_verify).
"""
from __future__ import annotations

import re
import string
from typing import Any

from rewards.registry import Markers, RewardError

_FENCE = re.compile(r"```[ \t]*([^\s`]*)[^\n]*\n(.*?)```", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def between(text: str, start: str, end: str) -> str | None:
    """Text between the last `start` marker and the `end` after it (None when absent)."""
    if not start:
        return None
    i = text.rfind(start)
    if i < 0:
        return None
    rest = text[i + len(start):]
    j = rest.find(end) if end else -1
    return rest[:j] if j >= 0 else None


def answer_text(completion: str, markers: Markers, require_markers: bool = False) -> str | None:
    """The text inside the solution markers; else the whole completion (None with
    `require_markers`)."""
    inside = between(completion, markers.solution_start, markers.solution_end)
    if inside is not None:
        return inside
    return None if require_markers else completion


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every ``` fenced block as (language tag in lower case, body), in order."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text or "")]


def normalise_text(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    text = _ARTICLES.sub(" ", (text or "").lower().translate(_PUNCT))
    return " ".join(text.split())


def split_items(value: Any, sep: str = ",") -> list[str]:
    """A list of strings, or one string split on `sep`, as stripped non-empty items."""
    if value is None:
        return []
    items = value.split(sep) if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def column(kwargs: dict[str, Any], name: str, rows: int, reward_id: str,
           fix: str = "") -> list[Any]:
    """The batch's column `name` (one value per completion), or a RewardError naming the reward,
    the column and `fix` (what to map or set)."""
    values = kwargs.get(name)
    if not isinstance(values, (list, tuple)) or len(values) != rows:
        fix = fix or f"add a column {name!r} to the dataset"
        raise RewardError(f"reward {reward_id!r} reads the dataset column {name!r}, but the batch "
                          f"has no such column with one value per completion; {fix}")
    return list(values)


def has_word(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words, ignoring case and spacing."""
    words = [re.escape(w) for w in phrase.split()]
    if not words:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"
    return re.search(pattern, text or "", re.IGNORECASE) is not None


def references(kwargs: dict[str, Any], rows: int, reward_id: str) -> list[Any]:
    """The batch's `reference` column; a RewardError when the dataset maps none."""
    return column(kwargs, "reference", rows, reward_id,
                  "map a reference column (dataset.mapping.reference)")


def is_blank(value: Any) -> bool:
    """A missing cell: None, text that is empty once stripped, or a list of blank cells."""
    if isinstance(value, (list, tuple)):
        return all(is_blank(v) for v in value)
    return value is None or (isinstance(value, str) and not value.strip())
