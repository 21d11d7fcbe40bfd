"""Pulling answers out of completions: the text inside solution markers, and numbers in text.

Numbers tolerate thousands separators (`1,234`), currency and units (`$12`, `12 apples`, `45%`),
signs, decimals and simple fractions (`3/4`). Returns None when nothing parses; never raises.
"""
from __future__ import annotations

import re
import string
from fractions import Fraction

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")


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


def parse_number(token: str) -> float | None:
    """Parse one number token such as '1,234.5' or '3/4'."""
    token = token.replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(Fraction(int(num), int(den)))
        return float(token)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[float]:
    """Every number in `text`, in order."""
    values = (parse_number(m.group()) for m in _NUMBER.finditer(text or ""))
    return [v for v in values if v is not None]


def last_number(text: str) -> float | None:
    found = numbers_in(text)
    return found[-1] if found else None


def as_number(text: str) -> float | None:
    """The value of a reference like '42', '$1,200' or '3/4 cup'; None if it holds no number
    or more than one."""
    found = numbers_in(text)
    return found[0] if len(found) == 1 else None


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise_text(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    text = _ARTICLES.sub(" ", (text or "").lower().translate(_PUNCT))
    return " ".join(text.split())
