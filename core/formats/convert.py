"""Conversion of a dataset from one shape to another (alpaca, sharegpt, messages, completion, qa,
prompt_completion, gsm8k), row by row, streaming.

Guarantees: every row is read through its mapping with `core.datasets.to_example`, exactly as
training reads it, and written from that example, so a converted file trains on the same prompts,
answers and references (a reference the new shape cannot imply, such as GSM8K's `#### N` in a
chat, is kept in a `reference` column). A row that cannot be converted (any problem
`core.formats.validation` reports for it, or a shape that cannot hold it) keeps its number and says
why. `convert_file` writes .jsonl (or .csv for the flat shapes) to a temporary file renamed into
place: the destination is whole or untouched.

Does not: keep system turns (training drops them too: the config's system prompt is used), keep
the instruction/input split of alpaca rows (the two become one prompt, as training sees them), or
turn a multi-turn chat into a flat shape (that row is reported instead).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from core.config import FieldMapping
from core.datasets import DatasetError, Example, split_gsm8k, to_example
from core.files import atomic_text_file
from core.formats.readers import Record, iter_records, unit_of
from core.formats.shapes import mapping_for, shape_named
from core.formats.validation import record_problems

COLUMNS = {"alpaca": ["instruction", "input", "output"], "qa": ["question", "answer"],
           "prompt_completion": ["prompt", "completion"], "gsm8k": ["question", "answer"],
           "completion": ["text"], "messages": ["messages"], "sharegpt": ["conversations"]}
_SHAREGPT_ROLES = {"user": "human", "assistant": "gpt"}


@dataclass(frozen=True)
class Conversion:
    """What `convert_file` wrote: rows written, rows skipped, and the first problems by row."""
    written: int
    skipped: int
    problems: list[dict[str, Any]] = field(default_factory=list)


def convert_rows(records: Iterable[Record], mapping: FieldMapping,
                 target: str) -> Iterator[Record]:
    """Each record read through `mapping` and written in the `target` shape; a broken record, or
    one the target cannot hold, stays a record with its number and a problem."""
    shape_named(target)
    for record in records:
        if record.row is None:
            yield record
            continue
        found = next(record_problems(record, mapping), None)
        if found:   # what validation reports first for this row
            yield Record(record.number, None, found[1])
            continue
        try:
            yield Record(record.number, as_shape(to_example(record.row, mapping), target))
        except DatasetError as err:
            yield Record(record.number, None, str(err))


def as_shape(example: Example, target: str) -> dict[str, Any]:
    """One example as a row of `target`, with a `reference` column where the shape cannot imply
    the example's reference."""
    row = _WRITERS[target](example)
    if example.reference is not None and \
            to_example(row, mapping_for(target, list(row))).reference != example.reference:
        row["reference"] = example.reference
    return row


def convert_file(src: Path, dst: Path, mapping: FieldMapping, target: str,
                 txt_mode: str = "line", limit: int = 50) -> Conversion:
    """Write `src`'s rows in the `target` shape to `dst` (.jsonl or .csv); rows that cannot be
    converted are skipped, counted, and the first `limit` listed as {"row", "message"}."""
    if dst.suffix.lower() not in (".jsonl", ".csv"):
        raise DatasetError(f"convert to a .jsonl or .csv file, not {dst.name}")
    if dst.suffix.lower() == ".csv" and target in ("messages", "sharegpt"):
        raise DatasetError(f"a {target} dataset holds lists of turns, which a CSV cell cannot; "
                           "convert to .jsonl")
    written, skipped, problems, unit = 0, 0, [], unit_of(src)
    with atomic_text_file(dst) as out:
        write = _csv_writer(out, target) if dst.suffix.lower() == ".csv" else _jsonl_writer(out)
        for record in convert_rows(iter_records(src, txt_mode), mapping, target):
            if record.row is not None:
                write(record.row)
                written += 1
                continue
            skipped += 1
            if len(problems) < limit:
                problems.append({"row": record.number,
                                 "message": f"{unit} {record.number}: {record.problem}"})
    return Conversion(written, skipped, problems)


# one writer per shape ------------------------------------------------------------------------
def _question(example: Example) -> str:
    turns = example.prompt_messages
    if len(turns) != 1:
        raise DatasetError(f"a chat of {len(turns)} turns before the answer cannot become one "
                           "question; convert to messages or sharegpt")
    return turns[0]["content"]


def _turns(example: Example) -> list[dict[str, str]]:
    answer = [{"role": "assistant", "content": example.response}] if example.response else []
    return [*example.prompt_messages, *answer]


def _gsm8k_row(example: Example) -> dict[str, Any]:
    answer = example.response
    if split_gsm8k(answer)[1] is None:
        if not example.reference:
            raise DatasetError("no reference answer to write after '####'")
        answer = f"{answer.rstrip()}\n#### {example.reference}".lstrip()
    return {"question": _question(example), "answer": answer}


def _completion_row(example: Example) -> dict[str, Any]:
    question = _question(example)
    return {"text": f"{question}\n\n{example.response}" if example.response else question}


def _sharegpt_row(example: Example) -> dict[str, Any]:
    return {"conversations": [{"from": _SHAREGPT_ROLES.get(t["role"], t["role"]),
                               "value": t["content"]} for t in _turns(example)]}


_WRITERS: dict[str, Callable[[Example], dict[str, Any]]] = {
    "alpaca": lambda e: {"instruction": _question(e), "input": "", "output": e.response},
    "qa": lambda e: {"question": _question(e), "answer": e.response},
    "prompt_completion": lambda e: {"prompt": _question(e), "completion": e.response},
    "gsm8k": _gsm8k_row,
    "completion": _completion_row,
    "messages": lambda e: {"messages": _turns(e)},
    "sharegpt": _sharegpt_row,
}


# output files --------------------------------------------------------------------------------
def _jsonl_writer(out: IO[str]) -> Callable[[dict[str, Any]], Any]:
    return lambda row: out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _csv_writer(out: IO[str], target: str) -> Callable[[dict[str, Any]], Any]:
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS[target], "reference"])
    writer.writeheader()
    return writer.writerow
