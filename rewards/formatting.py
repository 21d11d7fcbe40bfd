"""Format rewards: the template's markers in order, valid JSON, Markdown structure.

Partial credit (the share of markers found in order, of headers and list items wanted) gives GRPO a
gradient long before a model writes the whole format; `strict` and `valid_json` give 1 or 0 only.

Guarantees: scores between 0 and 1; a `schema` parameter that is not a valid JSON schema raises
RewardError naming the parameter. Does not: render Markdown (headers and list items are found line
by line, outside fenced code blocks) or repair almost-JSON.
"""
from __future__ import annotations

import json
import re
from typing import Any

from rewards.parsing import between, fenced_blocks
from rewards.registry import Markers, Param, RewardError, register

_FENCED = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_HEADER = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+\S", re.MULTILINE)


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


def schema_validator(schema: str) -> Any:
    """A jsonschema validator for the `schema` parameter (None when it is empty)."""
    if not schema.strip():
        return None
    import jsonschema  # imported when first used: the web process lists, never runs
    where = "reward 'valid_json' parameter 'schema'"
    try:
        parsed = json.loads(schema)
        validator = jsonschema.validators.validator_for(parsed)
        validator.check_schema(parsed)
    except json.JSONDecodeError as err:
        raise RewardError(f"{where} is not JSON ({err}); write the schema as JSON") from None
    except (jsonschema.SchemaError, TypeError, AttributeError) as err:
        message = getattr(err, "message", str(err))
        raise RewardError(f"{where} is not a valid JSON schema: {message}") from None
    return validator(parsed)


def _json_candidates(text: str, markers: Markers) -> list[str]:
    """The whole completion, its json (or untagged) fenced blocks, the solution markers' text."""
    blocks = [body for tag, body in fenced_blocks(text) if tag in ("json", "")]
    inside = between(text, markers.solution_start, markers.solution_end)
    return [text, *blocks, *([inside] if inside is not None else [])]


def _valid(candidate: str, validator: Any) -> bool:
    try:
        value = json.loads(candidate)
    except (json.JSONDecodeError, RecursionError):
        return False
    return validator is None or validator.is_valid(value)


@register("valid_json", name="Valid JSON", category="format",
          description="1 when the completion, a json (or untagged) fenced block in it, or the "
                      "text inside the solution markers parses as JSON (and matches the schema, "
                      "when one is given); 0 otherwise.",
          params=(Param("schema", "", "JSON schema the value must match, written as JSON "
                        "(e.g. {\"type\": \"object\", \"required\": [\"answer\"]}); empty: any "
                        "JSON value."),),
          uses_markers=True)
def valid_json(completions: list[str], *, markers: Markers, schema: str = "",
               **_: Any) -> list[float]:
    """>>> valid_json(['```json\\n{"a": 1}\\n```', "{a: 1}"], markers=Markers())
    [1.0, 0.0]
    """
    validator = schema_validator(schema)
    return [float(any(_valid(c, validator) for c in _json_candidates(text, markers)))
            for text in completions]


def _structure_share(text: str, min_headers: int, min_list_items: int) -> float:
    prose = _FENCED.sub("", text)
    parts = [min(len(pattern.findall(prose)) / wanted, 1.0)
             for pattern, wanted in ((_HEADER, min_headers), (_LIST_ITEM, min_list_items))
             if wanted]
    return sum(parts) / len(parts)


@register("markdown_structure", name="Markdown structure", category="format",
          description="Average of two shares: Markdown headers found / min_headers and list "
                      "items found / min_list_items (each capped at 1; a minimum of 0 is left "
                      "out). 1 with enough of both, 0 with neither. Code blocks do not count.",
          params=(Param("min_headers", 1, "Headers (# Title) that score full credit.", 0, 50),
                  Param("min_list_items", 2, "List items (- item, 1. item) that score full "
                        "credit.", 0, 100)))
def markdown_structure(completions: list[str], *, min_headers: int = 1, min_list_items: int = 2,
                       **_: Any) -> list[float]:
    """>>> markdown_structure(["# Plan\\n- one\\n- two"])
    [1.0]
    """
    if not (min_headers or min_list_items):
        raise RewardError("reward 'markdown_structure': min_headers and min_list_items are both "
                          "0, so every completion would score 1; set at least one above 0")
    return [_structure_share(text, min_headers, min_list_items) for text in completions]
