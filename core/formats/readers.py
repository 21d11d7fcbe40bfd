"""Rows of a dataset file, one at a time, each numbered so a problem can be named where it is.

Guarantees: `iter_records(path)` streams .jsonl, .csv and .txt line by line, .json (a list of rows,
or an object holding exactly one list) item by item (`core.formats.json_stream`) and .parquet one
row group at a time, so reading the first rows of a file of millions costs the same as of a small
one. Text is UTF-8 with or without a BOM, LF or CRLF line endings.
Every row is a dict; a broken row becomes a `Record` with `row=None` and a `problem` saying what is
wrong, and reading goes on. What `Record.number` counts depends on the file type (see
`iter_records`); `unit_of(path)` gives the word ("line" or "row") to name it with.
A CRLF inside a quoted CSV cell becomes LF.
A file that cannot be read at all (unknown extension, not UTF-8 from its first bytes, JSON that is
not a list of rows, a Parquet file that is not one) raises `DatasetError`.

Does not: check field contents (`core.formats.validation`), guess the shape (`core.formats.shapes`),
or import `datasets`/torch.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from core.datasets import DatasetError
from core.formats.json_stream import json_rows

READABLE = (".jsonl", ".json", ".csv", ".parquet", ".txt")
CSV_FIELD_LIMIT = 2**31 - 1  # the csv module refuses cells over 131,072 characters by default
csv.field_size_limit(CSV_FIELD_LIMIT)  # long cells are read, and validation's max_chars judges them
TXT_MODES = ("line", "block")
LINE_NUMBERED = (".jsonl", ".txt")   # Record.number is a line of the file; elsewhere a data row
BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 4096                    # a file whose first line is not UTF-8 is refused whole
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
NOT_UTF8 = "not UTF-8 text; save the file as UTF-8"


@dataclass(frozen=True)
class Record:
    """One row of a file: `row` is the dict, or None with `problem` saying why it is broken."""
    number: int
    row: dict[str, Any] | None
    problem: str | None = None


def unit_of(path: Path) -> str:
    """'line' where `Record.number` is a line of the file (.jsonl, .txt), else 'row'."""
    return "line" if path.suffix.lower() in LINE_NUMBERED else "row"


def iter_records(path: Path, txt_mode: str = "line") -> Iterator[Record]:
    """The records of a file, in order. `number` is:
    - .jsonl: the 1-based line number in the file (blank lines are skipped but counted);
    - .txt, `txt_mode="line"`: the 1-based line number (blank lines skipped but counted), rows
      `{"text": line}`; `txt_mode="block"`: the line number where a block of lines separated by
      blank lines starts, rows `{"text": the block's lines joined by "\\n"}`;
    - .csv: the 1-based data row (row 1 is the first row after the header; blank rows skipped);
    - .json and .parquet: the 1-based position of the row in the list / table."""
    suffix = _checked_suffix(path)
    if txt_mode not in TXT_MODES:
        raise DatasetError(f"txt_mode must be one of {', '.join(TXT_MODES)}, not {txt_mode!r}")
    readers = {".jsonl": _jsonl_records, ".json": _json_records, ".csv": _csv_records,
               ".parquet": _parquet_records,
               ".txt": _txt_block_records if txt_mode == "block" else _txt_line_records}
    try:
        yield from readers[suffix](path)
    except DatasetError:
        raise
    except Exception as err:  # csv.Error, pyarrow's ArrowInvalid...: a file that is not what it says
        raise DatasetError(f"cannot read {path.name} as {suffix.lstrip('.')}: "
                           f"{_first_line(err)}") from None


def head_rows(path: Path, count: int, txt_mode: str = "line") -> list[dict[str, Any]]:
    """The first `count` rows; the first broken one among them is a `DatasetError` naming it,
    e.g. "data.jsonl line 2: invalid JSON (Expecting value)"."""
    rows = []
    for record in islice(iter_records(path, txt_mode), count):
        if record.row is None:
            raise DatasetError(f"{path.name} {unit_of(path)} {record.number}: {record.problem}")
        rows.append(record.row)
    return rows


def count_rows(path: Path, txt_mode: str = "line") -> int:
    """How many records `iter_records` yields, broken ones included (reads the whole file, except
    Parquet, whose footer holds the count)."""
    if _checked_suffix(path) == ".parquet":
        import pyarrow.parquet as pq
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception as err:  # not a parquet file after all
            raise DatasetError(f"cannot read {path.name} as parquet: {_first_line(err)}") from None
    return sum(1 for _ in iter_records(path, txt_mode))


def _checked_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise DatasetError(f"cannot read {path.name}: use one of {', '.join(READABLE)}")
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    return suffix


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# text lines ----------------------------------------------------------------------------------
def _check_utf8_start(f: BinaryIO, path: Path) -> None:
    """Refuse a file whose first line is not UTF-8 (UTF-16, a spreadsheet, a binary...): later
    lines that are not become broken records instead."""
    start = f.read(SNIFF_BYTES)
    f.seek(0)
    first = start.split(b"\n", 1)[0]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as err:
        if first is not start or err.start < len(start) - 3:  # not a character cut at the end
            raise DatasetError(f"{path.name} is not UTF-8 text (byte {err.start}); save it as "
                               "UTF-8") from None


def _text_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text without its line ending) per line; text None where a line is not
    UTF-8. A BOM is dropped; CRLF and LF both end a line."""
    with path.open("rb") as f:
        _check_utf8_start(f, path)
        for number, raw in enumerate(f, 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None


# formats -------------------------------------------------------------------------------------
def _jsonl_records(path: Path) -> Iterator[Record]:
    for number, line in _text_lines(path):
        if line is None:
            yield Record(number, None, NOT_UTF8)
        elif line.strip():
            yield _json_record(number, line)


def _json_record(number: int, text: str) -> Record:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return Record(number, None, f"invalid JSON ({err.msg})")
    except (RecursionError, ValueError) as err:  # nested too deep, a number too long, ...
        return Record(number, None, f"invalid JSON ({type(err).__name__})")
    return _object_record(number, value)


def _object_record(number: int, value: Any) -> Record:
    if isinstance(value, dict):
        return Record(number, value)
    return Record(number, None, f"expected an object with fields, found {_kind(value)}")


def _kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number" if isinstance(value, (int, float)) else
                     type(value).__name__)


def _json_records(path: Path) -> Iterator[Record]:
    for number, item in enumerate(json_rows(path), 1):
        yield _object_record(number, item)


def _csv_records(path: Path) -> Iterator[Record]:
    with path.open("rb") as f:
        _check_utf8_start(f, path)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        rows = (cells for cells in csv.reader(f) if cells)  # cells of any size: CSV_FIELD_LIMIT
        header = next(rows, None)
        if header is None:
            return
        if any(_UNDECODED.search(name) for name in header):
            raise DatasetError(f"{path.name}: the header is not UTF-8 text; save it as UTF-8")
        for number, cells in enumerate(rows, 1):
            yield _csv_record(number, header, cells)


def _csv_record(number: int, header: list[str], cells: list[str]) -> Record:
    if len(cells) != len(header):
        return Record(number, None, f"{_cells(len(cells))} where the header has "
                                    f"{_cells(len(header))}; quote cells holding commas")
    if any(_UNDECODED.search(cell) for cell in cells):
        return Record(number, None, NOT_UTF8)
    return Record(number, {name: cell.replace("\r\n", "\n") for name, cell in zip(header, cells)})


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def _parquet_records(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield Record(number, row)


def _txt_line_records(path: Path) -> Iterator[Record]:
    for number, line in _text_lines(path):
        if line is None:
            yield Record(number, None, NOT_UTF8)
        elif line.strip():
            yield Record(number, {"text": line})


def _txt_block_records(path: Path) -> Iterator[Record]:
    start, lines, broken = 0, [], False
    for number, line in _text_lines(path):
        if line is not None and not line.strip():
            if lines or broken:
                yield _block_record(start, lines, broken)
            start, lines, broken = 0, [], False
            continue
        start = start or number
        broken = broken or line is None
        lines.append(line or "")
    if lines or broken:
        yield _block_record(start, lines, broken)


def _block_record(start: int, lines: Iterable[str], broken: bool) -> Record:
    if broken:
        return Record(start, None, NOT_UTF8)
    return Record(start, {"text": "\n".join(lines)})
