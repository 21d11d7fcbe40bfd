"""Benchmark: the quickstart config end to end on this machine, as a user runs it.

Runs `python -m core.cli train configs/examples/quickstart.json` in a child process and reports
wall time, steps per phase, GRPO steps/s, the mean reward of the first and last 5 GRPO log records,
and peak resident memory of the child (ru_maxrss), beside the estimate made before it started
(`services.estimates`: without and, when this machine has a cached calibration for the model, with
it) and their ratios. Writes bench/results/quickstart-<host>.json.
Usage: python bench/quickstart.py [--config PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.run_dir import RunDir  # noqa: E402  (after the path is set)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/examples/quickstart.json")
    args = parser.parse_args()
    outputs = Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    estimated = estimates_of(json.loads((REPO / args.config).read_text()))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "core.cli", "train", args.config,
                           "--outputs", str(outputs)], cwd=REPO)
    seconds = time.monotonic() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run_dir = next(outputs.iterdir())
    events = RunDir(run_dir).metric_history()
    grpo = [e for e in events if e["phase"] == "grpo"]
    rewards = [e["reward"] for e in grpo]
    grpo_time = sum(e.get("step_time", 0.0) for e in grpo)
    result = {
        "config": args.config, "exit_code": proc.returncode, "wall_seconds": round(seconds, 1),
        "steps": {p: max((e["step"] for e in events if e["phase"] == p), default=0)
                  for p in ("pre_training", "grpo")},
        "grpo_seconds_per_step": round(grpo_time / len(grpo), 2) if grpo else None,
        "reward_first5": round(sum(rewards[:5]) / 5, 3) if len(rewards) >= 5 else None,
        "reward_last5": round(sum(rewards[-5:]) / 5, 3) if len(rewards) >= 5 else None,
        "peak_rss_mib": round(peak_mib),
        "estimated_peak_mib": {k: round(v["memory"]["peak"] / 2**20)
                               for k, v in estimated.items()},
        "estimated_over_measured": {k: round(v["memory"]["peak"] / 2**20 / peak_mib, 3)
                                    for k, v in estimated.items()},
        "estimated_seconds": {k: v["time"]["seconds"] for k, v in estimated.items()
                              if v.get("time")},
        "machine": platform.node(),
        "cpu_count": __import__("os").cpu_count(), "run_dir": str(run_dir),
    }
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results" / f"quickstart-{platform.node() or 'host'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if proc.returncode == 0 else 1


def estimates_of(config: dict) -> dict:
    """The launch estimate without a calibration and, when one is cached, with it."""
    from services.datasets import DatasetLibrary
    from services.estimates import Estimates
    service = Estimates(DatasetLibrary(tempfile.mkdtemp(), 1 << 30), REPO)
    found = {"calibrated": service.estimate(config)}
    service.calibration_for = lambda *args: None  # the defaults of core.estimate alone
    found["uncalibrated"] = service.estimate(config)
    return {k: v for k, v in found.items() if k == "uncalibrated" or v["calibrated"]}


if __name__ == "__main__":
    sys.exit(main())
