"""Scores test cases with a set of rewards, for the reward testing page (`POST /api/rewards/test`).

Run as `python -m rewards.evaluate` with the request as JSON on stdin; writes the answer as JSON on
stdout. services/rewards.py starts it per request so that the web process neither imports the
rewards' heavy libraries (sympy through math-verify) nor runs them in a request thread (math-verify
can only time itself out in a main thread); a custom reward goes on through the sandbox from here.

Request: {"rewards": [{"name", "weight", "params"} | {"name", "weight", "source"} (a custom reward as
a run's config holds it)], "custom_code"?, "custom_weight"?,
"timeout_seconds"? (the custom reward's limit), "protected"? (folders it may not read; set by
the server, never by the client),
"template"?: {markers}, "cases": [{"prompt", "completion", "reference", ...columns}]}.
Answer: {"results": [{"total", "components": {name: score}}], "statistics": {"mean", "std", "min",
"max", "count"}, "per_reward": {name: statistics}, "rewards": [{"name", "weight"}], "output"}, or
{"error", "field", "line"?, "output"} naming the reward, the case (1-based) and the cause.

Scores are checked as strictly as in training, and stricter: NaN is an error here, not a skipped row.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from rewards import (CustomReward, Markers, RewardError, build_reward, check_scores, get_spec,
                     unique_names)
from rewards.sandbox import Limits, SandboxError

CUSTOM = "custom"
MARKER_KEYS = ("reasoning_start", "reasoning_end", "solution_start", "solution_end")


class Failure(Exception):
    def __init__(self, message: str, field: str, line: int | None = None, output: str = ""):
        super().__init__(message)
        self.field, self.line, self.output = field, line, output

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field, "output": self.output,
                **({"line": self.line} if self.line else {})}


def markers(template: dict[str, Any] | None) -> Markers:
    given = {k: str(v) for k, v in (template or {}).items() if k in MARKER_KEYS and v is not None}
    return Markers(**given)


def build(request: dict[str, Any]) -> list[tuple[str, float, Any, str]]:
    """(name, weight, callable, field) for every reward of the request."""
    built = []
    entries = request.get("rewards") or []
    names = unique_names([e["name"] for e in entries])
    limits = Limits(timeout_seconds=float(request.get("timeout_seconds", 10.0)),
                    protected=(*Limits().protected, *request.get("protected", [])))
    for i, (entry, name) in enumerate(zip(entries, names)):
        if entry.get("source") is not None:
            try:
                fn = CustomReward(name, entry["source"], limits=limits)
            except SandboxError as err:
                raise Failure(str(err), f"rewards.{i}.source", err.line) from None
            built.append((name, float(entry.get("weight", 1.0)), fn, f"rewards.{i}"))
            continue
        try:
            get_spec(entry["name"])
        except RewardError as err:
            raise Failure(str(err), f"rewards.{i}.name") from None
        try:
            fn = build_reward(entry["name"], entry.get("params") or {},
                              markers(request.get("template")), name=name)
        except RewardError as err:
            raise Failure(str(err), f"rewards.{i}.params") from None
        built.append((name, float(entry.get("weight", 1.0)), fn, f"rewards.{i}"))
    if request.get("custom_code") is not None:
        try:
            fn = CustomReward(CUSTOM, request["custom_code"], limits=limits)
        except SandboxError as err:
            raise Failure(str(err), "custom_code", err.line) from None
        built.append((CUSTOM, float(request.get("custom_weight", 1.0)), fn, "custom_code"))
    if not built:
        raise Failure("choose at least one reward, or write a custom one", "rewards")
    return built


def columns(cases: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The cases as the dataset columns a reward receives (one list per column)."""
    names = {k for case in cases for k in case if k != "completion"}
    return {k: [case.get(k) for case in cases] for k in sorted(names)}


def score(name: str, fn: Any, field: str, cases: list[dict[str, Any]]) -> list[float | None]:
    completions = [str(c.get("completion") or "") for c in cases]
    try:
        scores = list(fn(completions, **columns(cases)))
        nan_rows = check_scores(name, scores, len(completions))
    except SandboxError as err:
        raise Failure(str(err), f"cases.{err.row}" if err.row is not None else field,
                      err.line, err.output) from None
    except RewardError as err:
        raise Failure(str(err), field) from None
    except Exception as err:  # noqa: BLE001 - a preset's bug still names the reward
        raise Failure(f"reward {name!r} failed: {type(err).__name__}: {err}", field) from None
    if nan_rows:
        raise Failure(f"reward {name!r} returned NaN for case {nan_rows[0] + 1}; return a "
                      f"finite number (or None when it does not apply)", f"cases.{nan_rows[0]}")
    return [None if s is None else float(s) for s in scores]


def statistics(values: list[float | None]) -> dict[str, Any]:
    found = [v for v in values if v is not None]
    if not found:
        return {"mean": None, "std": None, "min": None, "max": None, "count": 0}
    mean = sum(found) / len(found)
    std = math.sqrt(sum((v - mean) ** 2 for v in found) / len(found))
    return {"mean": mean, "std": std, "min": min(found), "max": max(found), "count": len(found)}


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    cases = request.get("cases") or []
    rewards = build(request)
    components = {name: score(name, fn, field, cases) for name, _, fn, field in rewards}
    weights = {name: weight for name, weight, _, _ in rewards}
    results = []
    for row in range(len(cases)):
        scores = {name: components[name][row] for name in components}
        present = [weights[n] * s for n, s in scores.items() if s is not None]
        results.append({"total": sum(present) if present else None, "components": scores})
    output = "".join(fn.last_output for _, _, fn, _ in rewards if isinstance(fn, CustomReward))
    return {"results": results, "statistics": statistics([r["total"] for r in results]),
            "per_reward": {n: statistics(v) for n, v in components.items()},
            "rewards": [{"name": n, "weight": w} for n, w, _, _ in rewards],
            "output": output}


def main() -> None:
    request = json.load(sys.stdin)
    try:
        answer = evaluate(request)
    except Failure as failure:
        answer = failure.to_dict()
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
