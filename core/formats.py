"""Reading the first rows of a dataset file without loading it whole (previews in the web process).

Guarantees: `head_rows(path, n)` reads at most what it needs for `n` rows of JSONL, CSV (UTF-8 with
or without BOM), Parquet (one row group at a time) or JSON (a list, or an object holding one list;
JSON is parsed whole, there is no streaming JSON parser in the standard library); each row is a dict;
a broken line is a `DatasetError` naming its line number.

Does not: validate every row, count duplicates or compute statistics (the dataset-tools issue), or
import `datasets`/torch.
"""
from __future__ import annotations

import csv
import json
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

from core.datasets import DatasetError

READABLE = (".jsonl", ".json", ".csv", ".parquet")


def head_rows(path: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` rows of a file."""
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise DatasetError(f"cannot read {path.name}: use one of {', '.join(READABLE)}")
    readers = {".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows,
               ".parquet": _parquet_rows}
    try:
        return list(islice(readers[suffix](path), count))
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path.name} is not UTF-8 text (byte {err.start})") from None
    except DatasetError:
        raise
    except Exception as err:  # csv.Error, pyarrow's ArrowInvalid...: a file that is not what it says
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(f"cannot read {path.name} as {suffix.lstrip('.')}: {reason}") from None


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path.name} line {number}: invalid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path.name} line {number}: expected an object with fields")
            yield row


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path.name} line {err.lineno}: invalid JSON ({err.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else None
    if not isinstance(data, list):
        raise DatasetError(f"{path.name}: expected a list of rows, or an object holding one")
    yield from (row for row in data if isinstance(row, dict))


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f)


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq
    for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
        yield from batch.to_pylist()
