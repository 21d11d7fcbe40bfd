"""Writing rewards: length in a band, little repetition, concise answers, complete citations.

Guarantees: scores between 0 and 1, partial credit where a completion is close. `conciseness`
skips rows without a reference (None) and raises RewardError when the batch has no reference column.
Does not: judge style, grammar or truth; `citation_format` looks for the parts of a citation by
pattern (see its description) and does not check that the cited work exists.
"""
from __future__ import annotations

import math
import re
from typing import Any

from rewards.parsing import answer_text, is_blank, references
from rewards.registry import Markers, Param, RewardError, register

# Characters per token for English text when the model's token ids are not at hand.
_CHARS_PER_TOKEN = 4


def _band_score(n: int, low: int, high: int) -> float:
    if n < low:
        return n / low if low else 1.0
    if n > high:
        return max(0.0, 1.0 - (n - high) / max(high, 1))
    return 1.0


def _lengths(completions: list[str], unit: str, completion_ids: Any) -> list[int]:
    if unit == "words":
        return [len(t.split()) for t in completions]
    if unit == "characters":
        return [len(t) for t in completions]
    if isinstance(completion_ids, (list, tuple)) and len(completion_ids) == len(completions):
        return [len(ids) for ids in completion_ids]
    return [math.ceil(len(t) / _CHARS_PER_TOKEN) for t in completions]


@register("length_band", name="Length in a band", category="writing",
          description="1 when the completion's length is between min and max; below min the "
                      "score falls linearly to 0 at length 0, above max to 0 at twice max. "
                      "Tokens are the model's own during training, estimated as characters / 4 "
                      "elsewhere.",
          params=(Param("min_length", 5, "Shortest length that scores 1.", 0, 100_000),
                  Param("max_length", 200, "Longest length that scores 1.", 1, 1_000_000),
                  Param("unit", "words", "Count words, characters or tokens.",
                        choices=("words", "characters", "tokens"))))
def length_band(completions: list[str], *, min_length: int = 5, max_length: int = 200,
                unit: str = "words", completion_ids: Any = None, **_: Any) -> list[float]:
    """>>> length_band(["one two three"], min_length=1, max_length=5)
    [1.0]
    """
    if min_length > max_length:
        raise RewardError(f"reward 'length_band': min_length {min_length} is above max_length "
                          f"{max_length}; make min_length at most max_length")
    return [_band_score(n, min_length, max_length)
            for n in _lengths(completions, unit, completion_ids)]


def _distinct_share(text: str, n: int) -> float:
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


@register("repetition", name="No repetition", category="writing",
          description="Share of the completion's word n-grams that are distinct: 1 when no "
                      "n words repeat in the same order (or the text is shorter than n words), "
                      "near 0 when the same phrase loops.",
          params=(Param("n", 3, "Words per n-gram.", 1, 10),))
def repetition(completions: list[str], *, n: int = 3, **_: Any) -> list[float]:
    """>>> repetition(["a b c a b c"], n=3)
    [0.75]
    """
    return [_distinct_share(text, n) for text in completions]


def _concise_score(answer: str, reference: Any, ratio: float) -> float | None:
    ref_words = len(str(reference).split())
    if ref_words == 0:
        return None
    words, limit = len(answer.split()), ratio * ref_words
    if words == 0:
        return 0.0
    return max(0.0, min(1.0, 2.0 - words / limit))


@register("conciseness", name="Concise answer", category="writing",
          description="1 when the answer (inside the solution markers, else the whole "
                      "completion) has at most ratio times the reference's words, falling "
                      "linearly to 0 at twice that; an empty answer scores 0. Rows without a "
                      "reference are skipped.",
          params=(Param("ratio", 1.5, "Longest answer that scores 1, as a multiple of the "
                        "reference's length in words.", 0.1, 20.0),),
          needs=("reference",), uses_markers=True)
def conciseness(completions: list[str], *, markers: Markers, ratio: float = 1.5,
                **kwargs: Any) -> list[float | None]:
    """>>> conciseness(["<answer>Paris</answer>"], reference=["Paris"], markers=Markers())
    [1.0]
    """
    refs = references(kwargs, len(completions), "conciseness")
    return [None if is_blank(ref) else _concise_score(answer_text(c, markers) or "", ref, ratio)
            for c, ref in zip(completions, refs)]


# The parts of a citation, each found by pattern anywhere in the completion.
_CITATION_PARTS = {
    # "Smith, J." / "Smith, J. R." / "Smith et al." (a full first name is too like prose)
    "author": re.compile(r"\b[A-Z][\w'’-]+(?:,\s+[A-Z]\.|\s+et\s+al\b)"),
    # a year from 1500 to 2099, optionally "2020a"
    "year": re.compile(r"(?<!\d)(?:1[5-9]|20)\d{2}[a-z]?(?!\d)"),
    # a title of two words or more: "quoted", *italic*, _italic_, or APA's "(2020). Title."
    "title": re.compile("|".join((r"[\"“][^\"”\n]*\w\s+\w[^\"”\n]*[\"”]",
                                  r"(?<!\*)\*[^*\n]*\w\s+\w[^*\n]*\*",
                                  r"\b_[^_\n]*\w\s+\w[^_\n]*_\b",
                                  r"\(\d{4}[a-z]?\)\.\s+[A-Z][^.\n]*\s[^.\n]*\."))),
    # a DOI (10.xxxx/...) or a web address
    "doi_or_url": re.compile(r"\b10\.\d{4,9}/\S+|\bdoi:\s*\S+|https?://\S+", re.IGNORECASE),
}


def _citation_share(text: str) -> float:
    return sum(bool(p.search(text)) for p in _CITATION_PARTS.values()) / len(_CITATION_PARTS)


@register("citation_format", name="Citation parts present", category="writing",
          description="Share of the four parts of a citation found in the completion: an author "
                      "('Smith, J.' or 'Smith et al.'), a year (1500-2099), a title (quoted, in "
                      "italics, or after '(2020). '), and a DOI or URL. 1 with all four, 0 with "
                      "none.")
def citation_format(completions: list[str], **_: Any) -> list[float]:
    """>>> citation_format(['Smith, J. (2020). "Deep Nets." https://doi.org/10.1/x'])
    [1.0]
    """
    return [_citation_share(text) for text in completions]
