"""Question-answering rewards: exact match and token F1 against the reference (SQuAD's metrics),
and the share of expected keywords an answer mentions.

The answer is the text inside the solution markers when present, else the whole completion. A
reference may be one answer or a list of acceptable answers (the best match counts).

Guarantees: scores between 0 and 1; rows without a reference (or without keywords) score None; a
batch missing the column a reward reads raises RewardError. Does not: recognise paraphrases or
synonyms.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from rewards.parsing import (answer_text, column, has_word, is_blank, normalise_text,
                             references, split_items)
from rewards.registry import Markers, Param, register


def _acceptable(reference: Any) -> list[str]:
    """The reference's acceptable answers (one, or a list)."""
    values = reference if isinstance(reference, (list, tuple)) else [reference]
    return [str(v) for v in values if not is_blank(v)]


def _exact(answer: str, reference: str, normalise: bool) -> bool:
    if normalise:
        return normalise_text(answer) == normalise_text(reference)
    return answer.strip() == reference.strip()


@register("exact_match", name="Exact match", category="qa",
          description="1 when the answer (inside the solution markers, else the whole "
                      "completion) equals the reference or one of the listed references; with "
                      "normalise, case, punctuation, articles and spacing are ignored. 0 "
                      "otherwise.",
          params=(Param("normalise", True, "Ignore case, punctuation, articles (a, an, the) and "
                        "extra spaces."),),
          needs=("reference",), uses_markers=True)
def exact_match(completions: list[str], *, markers: Markers, normalise: bool = True,
                **kwargs: Any) -> list[float | None]:
    """>>> exact_match(["<answer>The Nile.</answer>"], reference=["nile"], markers=Markers())
    [1.0]
    """
    refs = references(kwargs, len(completions), "exact_match")
    return [None if is_blank(ref) else
            float(any(_exact(answer_text(c, markers) or "", r, normalise)
                      for r in _acceptable(ref)))
            for c, ref in zip(completions, refs)]


def token_f1_score(answer: str, reference: str) -> float:
    """SQuAD's F1 between the normalised tokens of the answer and of the reference."""
    got, want = normalise_text(answer).split(), normalise_text(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@register("token_f1", name="Token F1", category="qa",
          description="Word overlap between the answer (inside the solution markers, else the "
                      "whole completion) and the reference, as SQuAD's F1 after normalisation: "
                      "1 for the same words, 0 for no word in common.",
          needs=("reference",), uses_markers=True)
def token_f1(completions: list[str], *, markers: Markers, **kwargs: Any) -> list[float | None]:
    """>>> token_f1(["<answer>the river Nile</answer>"], reference=["Nile"], markers=Markers())
    [0.6666666666666666]
    """
    refs = references(kwargs, len(completions), "token_f1")
    return [None if is_blank(ref) else
            max(token_f1_score(answer_text(c, markers) or "", r) for r in _acceptable(ref))
            for c, ref in zip(completions, refs)]


def _keywords(kwargs: dict[str, Any], keyword_list: str, field: str, rows: int) -> list[list[str]]:
    if split_items(keyword_list):
        return [split_items(keyword_list)] * rows
    values = column(kwargs, field, rows, "keyword_coverage",
                    f"add a column {field!r} to the dataset, or set the parameter "
                    f"keyword_list or keywords_field")
    return [split_items(v) for v in values]


@register("keyword_coverage", name="Keyword coverage", category="qa",
          description="Share of the expected keywords that the answer (inside the solution "
                      "markers, else the whole completion) contains as whole words, ignoring "
                      "case: 1 with all, 0 with none. Rows without keywords are skipped.",
          params=(Param("keyword_list", "", "Comma-separated keywords every answer needs; "
                        "empty: read them from each row."),
                  Param("keywords_field", "keywords", "Dataset column with each row's "
                        "keywords (a list, or comma-separated text).")),
          uses_markers=True)
def keyword_coverage(completions: list[str], *, markers: Markers, keyword_list: str = "",
                     keywords_field: str = "keywords", **kwargs: Any) -> list[float | None]:
    """>>> keyword_coverage(["Water boils at 100 C"], markers=Markers(), keyword_list="boils,100")
    [1.0]
    """
    wanted = _keywords(kwargs, keyword_list, keywords_field, len(completions))
    scores: list[float | None] = []
    for text, words in zip(completions, wanted):
        answer = answer_text(text, markers) or ""
        scores.append(sum(has_word(answer, w) for w in words) / len(words) if words else None)
    return scores
