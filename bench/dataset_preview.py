"""Benchmark: a dataset preview costs the same for a 1,000,000-row file as for a 1,000-row one.

One process, side by side: for JSONL and for a JSON list, two GSM8K-like files are generated in a
temporary folder (1,000,000 and 1,000 rows), then for each the preview path the datasets page takes is timed,
`core.formats.head_rows` (first 20 rows) + `core.formats.shapes.detect_shape`, median of
`--repeats` runs after one warm-up. Also timed once per repeat: `iter_records` over the whole
1,000-row file (what validation and statistics read). Prints the times and the large/small ratio
and writes bench/results/dataset_preview.json.
Usage: python bench/dataset_preview.py [--repeats 5] [--rows 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.formats import head_rows, iter_records  # noqa: E402  (after the path is set)
from core.formats.shapes import detect_shape  # noqa: E402

OUT = REPO / "bench" / "results" / "dataset_preview.json"
PREVIEW_ROWS = 20
FILE_TYPES = (".jsonl", ".json")   # JSONL is read line by line, a JSON list item by item


def gsm8k_row(i: int) -> dict[str, str]:
    a, b = i % 997, i % 89
    return {"question": f"Sam has {a} marbles and finds {b} more. "
                        "How many marbles does Sam have now?",
            "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}


def write_rows(path: Path, count: int) -> int:
    """A GSM8K-like file of `count` rows, JSONL or (by its suffix) one JSON list; returns its
    size in bytes."""
    as_list = path.suffix == ".json"
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n" if as_list else "")
        for i in range(count):
            separator = ",\n" if as_list and i < count - 1 else "\n"
            f.write(json.dumps(gsm8k_row(i)) + separator)
        f.write("]\n" if as_list else "")
    return path.stat().st_size


def median_seconds(action: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    action()   # warm-up: imports and the page cache, as in a server that has run a while
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def preview(path: Path) -> str:
    return detect_shape(head_rows(path, PREVIEW_ROWS)).shape or ""


def measure(folder: Path, suffix: str, rows: int, repeats: int) -> dict[str, Any]:
    """Preview times of a `rows`-row and a 1,000-row file of one type, side by side."""
    large, small = folder / f"large{suffix}", folder / f"small{suffix}"
    start = time.perf_counter()
    sizes = {"large": write_rows(large, rows), "small": write_rows(small, 1000)}
    generated = time.perf_counter() - start
    assert preview(large) == preview(small) == "gsm8k"
    big, big_runs = median_seconds(lambda: preview(large), repeats)
    little, little_runs = median_seconds(lambda: preview(small), repeats)
    whole, whole_runs = median_seconds(lambda: sum(1 for _ in iter_records(small)), repeats)
    return {"large": {"rows": rows, "bytes": sizes["large"], "preview_s": big,
                      "runs_s": big_runs},
            "small": {"rows": 1000, "bytes": sizes["small"], "preview_s": little,
                      "runs_s": little_runs},
            "large_over_small": big / little,
            "iter_records_small_whole_s": whole, "iter_records_small_runs_s": whole_runs,
            "generate_s": generated}


def report(suffix: str, found: dict[str, Any], repeats: int) -> None:
    large, small = found["large"], found["small"]
    print(f"{suffix}: preview ({PREVIEW_ROWS} rows + detect_shape), median of {repeats}:")
    print(f"  {large['rows']:>9,} rows ({large['bytes'] / 2**20:,.0f} MiB): "
          f"{large['preview_s'] * 1e3:8.3f} ms")
    print(f"  {1000:>9,} rows ({small['bytes'] / 2**10:,.0f} KiB): "
          f"{small['preview_s'] * 1e3:8.3f} ms")
    print(f"  ratio large / small: {found['large_over_small']:.2f}")
    print(f"  iter_records over the whole 1,000-row file: "
          f"{found['iter_records_small_whole_s'] * 1e3:.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    result: dict[str, Any] = {"preview_rows": PREVIEW_ROWS, "repeats": args.repeats,
                              "machine": platform.node(), "cpu_count": os.cpu_count(),
                              "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in FILE_TYPES:
            result[suffix.lstrip(".")] = found = measure(Path(folder), suffix, args.rows,
                                                         args.repeats)
            report(suffix, found, args.repeats)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
