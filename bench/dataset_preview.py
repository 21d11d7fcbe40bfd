"""Benchmark: a dataset preview costs the same for a 1,000,000-row file as for a 1,000-row one.

One process, side by side: two GSM8K-like JSONL files are generated in a temporary folder
(1,000,000 and 1,000 rows), then for each the preview path the datasets page takes is timed,
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


def write_rows(path: Path, count: int) -> int:
    """A GSM8K-like JSONL file of `count` rows; returns its size in bytes."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            a, b = i % 997, i % 89
            f.write(json.dumps({"question": f"Sam has {a} marbles and finds {b} more. "
                                            "How many marbles does Sam have now?",
                                "answer": f"{a} + {b} = {a + b}\n#### {a + b}"}) + "\n")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        large, small = Path(folder) / "large.jsonl", Path(folder) / "small.jsonl"
        start = time.perf_counter()
        sizes = {"large": write_rows(large, args.rows), "small": write_rows(small, 1000)}
        generated = time.perf_counter() - start
        assert preview(large) == preview(small) == "gsm8k"
        big, big_runs = median_seconds(lambda: preview(large), args.repeats)
        little, little_runs = median_seconds(lambda: preview(small), args.repeats)
        whole, whole_runs = median_seconds(lambda: sum(1 for _ in iter_records(small)),
                                           args.repeats)
    result = {
        "preview_rows": PREVIEW_ROWS, "repeats": args.repeats,
        "large": {"rows": args.rows, "bytes": sizes["large"], "preview_s": big,
                  "runs_s": big_runs},
        "small": {"rows": 1000, "bytes": sizes["small"], "preview_s": little,
                  "runs_s": little_runs},
        "large_over_small": big / little,
        "iter_records_small_whole_s": whole, "iter_records_small_runs_s": whole_runs,
        "generate_s": generated,
        "machine": platform.node(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(f"preview ({PREVIEW_ROWS} rows + detect_shape), median of {args.repeats}:")
    print(f"  {args.rows:>9,} rows ({sizes['large'] / 2**20:,.0f} MiB): {big * 1e3:8.3f} ms")
    print(f"  {1000:>9,} rows ({sizes['small'] / 2**10:,.0f} KiB): {little * 1e3:8.3f} ms")
    print(f"  ratio large / small: {big / little:.2f}")
    print(f"iter_records over the whole 1,000-row file: {whole * 1e3:.3f} ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
