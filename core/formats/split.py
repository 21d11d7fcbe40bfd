"""Split a dataset file into train / validation (/ test) JSONL files with a seed.

Guarantees: the readable rows are numbered 0..n-1 in file order and shuffled with
`numpy.random.default_rng(seed).permutation(n)`, the way `core.datasets.split_indices` does it: the
first `ceil(n * validation)` shuffled rows are the validation part, the next `ceil(n * test)` the
test part, the rest train. With `test=0` the validation part is exactly the rows training holds out
for the same fraction and seed when every row is usable; to be sure training evaluates on this
part, train on the train part with this one as `dataset.validation_path`. The parts are disjoint and together hold
every readable row; each keeps the file's order. Fractions that leave a part empty are refused
before anything is written, with the numbers; each file is written to a temporary file and renamed,
so a part is whole or absent.

Does not: stratify, keep broken rows (they are counted and skipped), or write anything but JSONL.
Reads the file twice (count, then write) and holds one byte per row in memory.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from core.datasets import DatasetError
from core.files import atomic_text_file
from core.formats.readers import iter_records

PARTS = ("train", "validation", "test")


def split_file(src: Path, out_dir: Path, validation: float, test: float = 0.0, seed: int = 42,
               *, txt_mode: str = "line") -> dict[str, Any]:
    """Write `<stem>.train.jsonl`, `<stem>.validation.jsonl` (and `<stem>.test.jsonl` when
    `test` > 0) into `out_dir`. Returns `{"parts": {part: {"path", "rows"}}, "seed",
    "broken_rows"}`."""
    src, out_dir = Path(src), Path(out_dir)
    count, broken = _count_readable(src, txt_mode)
    sizes = part_sizes(count, validation, test)
    assignment = assign_parts(count, sizes, seed)
    paths = {part: out_dir / f"{src.stem}.{part}.jsonl" for part in PARTS if sizes[part]}
    _write_parts(src, txt_mode, assignment, paths)
    return {"parts": {part: {"path": str(path), "rows": sizes[part]}
                      for part, path in paths.items()},
            "seed": seed, "broken_rows": broken}


def part_sizes(count: int, validation: float, test: float = 0.0) -> dict[str, int]:
    """Rows per part, or a `DatasetError` saying which fraction leaves a part empty."""
    if count == 0:
        raise DatasetError("the file has no readable row to split")
    sizes = {"validation": _held_out(count, validation, "validation", required=True),
             "test": _held_out(count, test, "test", required=False)}
    sizes["train"] = count - sizes["validation"] - sizes["test"]
    if sizes["train"] < 1:
        raise DatasetError(f"validation {validation} and test {test} of {count} rows leave no row "
                           "to train on; lower them", field="validation")
    return sizes


def _held_out(count: int, fraction: float, part: str, required: bool) -> int:
    """`ceil(count * fraction)` as split_indices holds out, refusing a part that would be empty."""
    if not 0 <= fraction < 1 or (required and fraction == 0):
        allowed = ("above 0 and below 1 (a fraction of the rows)" if required else
                   f"0 (no {part} part) or a fraction below 1")
        raise DatasetError(f"{part} must be {allowed}, not {fraction}", field=part)
    if fraction and round(count * fraction) < 1:  # the rule split_indices applies
        raise DatasetError(f"{part} {fraction} of {count} rows holds out no row; use at least "
                           f"{1 / count:.3g} (1 row)", field=part)
    return math.ceil(count * fraction)


def assign_parts(count: int, sizes: dict[str, int], seed: int) -> bytearray:
    """The part of each row position (an index into PARTS), from the seeded permutation."""
    import numpy as np
    order = np.random.default_rng(seed).permutation(count)
    assignment = bytearray(count)  # 0 = train
    validation_end = sizes["validation"]
    for position in order[:validation_end]:
        assignment[position] = PARTS.index("validation")
    for position in order[validation_end:validation_end + sizes["test"]]:
        assignment[position] = PARTS.index("test")
    return assignment


def _count_readable(src: Path, txt_mode: str) -> tuple[int, int]:
    readable = broken = 0
    for record in iter_records(src, txt_mode):
        if record.row is None:
            broken += 1
        else:
            readable += 1
    return readable, broken


def _write_parts(src: Path, txt_mode: str, assignment: bytearray, paths: dict[str, Path]) -> None:
    out_dir = next(iter(paths.values())).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(paths["train"]) as train, \
            atomic_output(paths["validation"]) as validation, \
            atomic_output(paths.get("test")) as test:
        files = (train, validation, test)
        position = 0
        for record in iter_records(src, txt_mode):
            if record.row is None:
                continue
            files[assignment[position]].write(jsonl_line(record.row))
            position += 1


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSONL line; values JSON cannot hold (dates, bytes from Parquet) are written as text."""
    return json.dumps(row, ensure_ascii=False, default=str) + "\n"


@contextmanager
def atomic_output(path: Path | None) -> Iterator[IO[str] | None]:
    """`core.files.atomic_text_file`, or None for an output not asked for (a split without a test
    part), so optional outputs read the same."""
    if path is None:
        yield None
        return
    with atomic_text_file(path) as f:
        yield f
