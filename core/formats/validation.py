"""Every problem of a dataset file, named by row, before training starts.

Guarantees: `validate_file` reads the file once, streaming (`core.formats.readers.iter_records`),
and returns counts (rows, valid, invalid), the first `limit` problems as `{"row", "field",
"message"}` and whether more exist. A row is checked through its field mapping: a broken line or
row (invalid JSON, wrong number of CSV cells, not UTF-8), a mapped field that is missing, empty
(prompt and response only: an empty `input` or `reference` is allowed), of the wrong type (a number
or list where text is expected, a chat column that is not a list of role/content or from/value
turns), longer than `max_chars`, or holding non-text content (control characters, binary data).
Messages are short and exact, e.g. `row 7: "output" is empty`; the word is "line" for .jsonl/.txt
files, whose numbers are lines (see `readers.iter_records`). `prompt_problem` is the check training
applies to every row (`core.datasets`), so both say the same thing.

Does not: change the file (skipping or fixing rows is the caller's choice), judge answers, or count
duplicates (`core.formats.dedup`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from core.config import FieldMapping
from core.datasets import column_value, has_column
from core.formats.readers import Record, iter_records, unit_of
from core.formats.shapes import detect_shape, mapping_for

SAMPLE_ROWS = 20                                # rows read to find the columns of a shape
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_REQUIRED = ("messages", "instruction", "response")   # roles that must hold text in every row
_TURN_KEYS = (("role", "content"), ("from", "value"))
_NOT_PROMPT = ("system", "assistant", "gpt")


@dataclass(frozen=True)
class Report:
    """The outcome of `validate_file`; `problems` are the first ones, `more` says others exist."""
    rows: int
    valid: int
    invalid: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False
    mapping: FieldMapping | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "valid": self.valid, "invalid": self.invalid,
                "problems": self.problems, "more": self.more,
                "mapping": self.mapping.model_dump() if self.mapping else None}


def validate_file(path: Path, mapping_or_shape: FieldMapping | str, max_chars: int | None = None,
                  limit: int = 50, txt_mode: str = "line") -> Report:
    """Check every row of `path` through a mapping, or through the mapping of a shape name
    ("alpaca", ..., or "auto" to detect it from the first rows)."""
    mapping = resolve_mapping(path, mapping_or_shape, txt_mode)
    unit, problems, counts, total = unit_of(path), [], {"rows": 0, "invalid": 0}, 0
    for record in iter_records(path, txt_mode):
        found = list(record_problems(record, mapping, max_chars))
        counts["rows"] += 1
        counts["invalid"] += bool(found)
        total += len(found)
        problems += [{"row": record.number, "field": name,
                      "message": f"{unit} {record.number}: {text}"}
                     for name, text in found[:max(0, limit - len(problems))]]
    return Report(counts["rows"], counts["rows"] - counts["invalid"], counts["invalid"], problems,
                  total > len(problems), mapping)


def resolve_mapping(path: Path, mapping_or_shape: FieldMapping | str,
                    txt_mode: str = "line") -> FieldMapping:
    """A mapping as given, or the one of a shape over the file's first good rows."""
    if isinstance(mapping_or_shape, FieldMapping):
        return mapping_or_shape
    rows = [r.row for r in _first_good(path, txt_mode)]
    if mapping_or_shape == "auto":
        detection = detect_shape(rows)
        if detection.mapping is None:
            return mapping_for("qa", _columns(rows))  # raises, naming the columns to map
        return detection.mapping
    return mapping_for(mapping_or_shape, _columns(rows))


def _first_good(path: Path, txt_mode: str) -> Iterator[Record]:
    count = 0
    for record in iter_records(path, txt_mode):
        if record.row is not None:
            yield record
            count += 1
            if count == SAMPLE_ROWS:
                return


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def record_problems(record: Record, mapping: FieldMapping,
                    max_chars: int | None = None) -> Iterator[tuple[str | None, str]]:
    """(field, message without the row) for each problem of one record."""
    if record.row is None:
        yield None, record.problem or "unreadable"
        return
    for role, column in mapping:
        if column is None:
            continue
        text = _field_problem(record.row, role, column, max_chars)
        if text:
            yield column, text


def prompt_problem(row: dict[str, Any], mapping: FieldMapping) -> tuple[str, str] | None:
    """(column, message) when the row's mapped prompt is missing or empty, or its chat is not a
    list of turns with a user turn: what training refuses (a number is a prompt once written)."""
    if mapping.messages:
        text = _chat_problem(mapping.messages, row.get(mapping.messages), None) \
            if mapping.messages in row else f'"{mapping.messages}" is missing'
        return (mapping.messages, text) if text else None
    if mapping.instruction is None:
        return None
    text = _presence_problem(row, mapping.instruction)
    return (mapping.instruction, text) if text else None


def _presence_problem(row: dict[str, Any], column: str) -> str | None:
    if not has_column(list(row), column):
        return f'"{column}" is missing'
    value = column_value(row, column)  # a dotted path reads a nested value, as training does
    if value is None or (isinstance(value, str) and not value.strip()):
        return f'"{column}" is empty'
    return None


def _field_problem(row: dict[str, Any], role: str, column: str,
                   max_chars: int | None) -> str | None:
    if role == "messages":
        return _presence_problem(row, column) if column not in row else \
            _chat_problem(column, row[column], max_chars)
    missing = _presence_problem(row, column)
    if missing:
        return missing if role in _REQUIRED else None
    value = column_value(row, column)
    if not isinstance(value, str) and not (role == "reference" and _is_number(value)):
        return f'"{column}" is {_kind(value)}, expected text'
    return _text_problem(column, value, max_chars)


def _text_problem(column: str, text: str, max_chars: int | None) -> str | None:
    if max_chars is not None and len(text) > max_chars:
        return f'"{column}" is {len(text):,} characters long, over the {max_chars:,} limit'
    bad = _CONTROL.search(text)
    if bad:
        return f'"{column}" holds non-text content (U+{ord(bad.group()):04X} at character ' \
               f'{bad.start() + 1})'
    return None


def _chat_problem(column: str, turns: Any, max_chars: int | None) -> str | None:
    if turns is None or turns == []:
        return f'"{column}" is empty'
    if not isinstance(turns, list):
        return f'"{column}" is {_kind(turns)}, expected a list of turns'
    for number, turn in enumerate(turns, 1):
        keys = next((k for k in _TURN_KEYS if isinstance(turn, dict) and all(x in turn for x in k)),
                    None)
        if keys is None:
            return f'"{column}" turn {number} is not a role/content or from/value object'
        if not isinstance(turn[keys[1]], str):
            return f'"{column}" turn {number} {keys[1]} is {_kind(turn[keys[1]])}, expected text'
    if all(_speaker(t) in _NOT_PROMPT for t in turns):
        return f'"{column}" has no user turn'
    return _text_problem(column, "\n".join(str(t.get("content", t.get("value"))) for t in turns),
                         max_chars)


def _speaker(turn: dict[str, Any]) -> str:
    return str(turn.get("role", turn.get("from")))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if _is_number(value):
        return "a number"
    kinds = {list: "a list", dict: "an object", bytes: "binary data", type(None): "null",
             str: "a string"}
    return kinds.get(type(value), f"a {type(value).__name__}")
