"""Reading runs back from their directories: lists, details, metric history, samples, logs and
checkpoints, for the API and the pages.

Guarantees: everything comes from `outputs/<run_id>/` as written by the worker (DESIGN.md §3), so a
restarted server sees exactly what the old one saw; a run id from a request is accepted only when it
names a run directory directly inside the outputs root (no separators, no dotfiles); a run's summary
(best reward, active time) is recomputed only when its events file has grown.

Does not: start, stop or watch workers (services/jobs.py), or import Flask or torch.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from core.config import ConfigError, load_config
from core.files import PathRefused, read_json, resolve_inside
from core.run_dir import CHECKPOINT_MARKER, RunDir, checkpoint_step, metric_history

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
EVENT_KEYS = ("type", "time", "index")
log = logging.getLogger("grpo_studio.runs")


class RunNotFound(LookupError):
    """No run directory with this id."""


def valid_run_id(run_id: object) -> bool:
    return isinstance(run_id, str) and bool(RUN_ID_PATTERN.fullmatch(run_id)) \
        and ".." not in run_id


class RunStore:
    """The run directories under one outputs root."""

    def __init__(self, outputs: str | Path):
        self.outputs = Path(outputs)
        self._summaries: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def run(self, run_id: str) -> RunDir:
        """The run directory of `run_id`, or RunNotFound."""
        if not valid_run_id(run_id):
            raise RunNotFound(f"no run {run_id!r}")
        try:  # a symlinked run folder pointing elsewhere is no run of this store
            resolve_inside(self.outputs, run_id)
        except PathRefused:
            raise RunNotFound(f"no run {run_id!r}") from None
        run = RunDir(self.outputs / run_id)
        if not run.state_path.is_file():
            raise RunNotFound(f"no run {run_id!r}")
        return run

    def runs(self) -> list[RunDir]:
        """Every run directory, newest first."""
        if not self.outputs.is_dir():
            return []
        found = [(state, RunDir(p)) for p in self.outputs.iterdir()
                 if p.is_dir() and not p.is_symlink() and valid_run_id(p.name)
                 and (p / "state.json").is_file()
                 and (state := self.state(RunDir(p)))]
        found.sort(key=lambda sr: (sr[0].get("created_at") or "", sr[1].run_id), reverse=True)
        return [run for _, run in found]

    def state(self, run: RunDir) -> dict[str, Any]:
        """state.json, or {} (logged) when it cannot be read: one damaged run directory must not
        take the listing or the watcher down."""
        try:
            state = read_json(run.state_path, default={})
        except (OSError, ValueError) as err:
            log.warning("skipping %s: state.json cannot be read (%s)", run.path, err)
            return {}
        return state if isinstance(state, dict) else {}

    def details(self, run: RunDir) -> dict[str, Any]:
        """state.json plus the run's summary, config (as saved: it may no longer validate) and
        the estimate made at launch (None when none was made)."""
        estimate = read_json(run.path / "estimate.json", default=None)
        return {**self.listing(run), "config": self.config(run), "estimate": estimate}

    def listing(self, run: RunDir) -> dict[str, Any]:
        """state.json plus best reward, last metrics and active seconds."""
        return {**self.state(run), **self.summary(run)}

    def summary(self, run: RunDir) -> dict[str, Any]:
        size = _size(run.events_path)
        with self._lock:
            cached = self._summaries.get(run.run_id)
        if not cached or cached[0] != size:
            cached = (size, summarise(list(run.iter_events())))
            with self._lock:
                self._summaries[run.run_id] = cached
        summary = dict(cached[1])
        closed, since = summary.pop("_closed_seconds"), summary.pop("_running_since")
        # a running run's time moves on between events
        summary["active_seconds"] = round(closed + (time.time() - since if since else 0.0), 1)
        return summary

    def metrics_since(self, run: RunDir, since: int = 0) -> dict[str, Any]:
        """Metric events (each step once) whose event index is >= since, and the next index."""
        events = [{**e, "index": i} for i, e in enumerate(run.iter_events())]
        kept = [e for e in metric_history(events) if e["index"] >= since]
        return {"events": kept, "next": len(events)}

    def samples(self, run: RunDir, limit: int = 20, offset: int = 0, step: int | None = None,
                query: str = "") -> dict[str, Any]:
        """Rollout samples (one per prompt group), newest first, of one `step` and holding
        `query` (case-insensitive, in prompt, completions or reference) when given; `total`
        counts the matches, `steps` lists every step that has samples."""
        every = [e for e in run.iter_events() if e.get("type") == "sample"]
        needle = query.strip().lower()
        found = [e for e in reversed(every)
                 if (step is None or e.get("step") == step)
                 and (not needle or needle in _sample_text(e))]
        return {"samples": found[offset:offset + limit], "total": len(found),
                "steps": sorted({e["step"] for e in every if isinstance(e.get("step"), int)})}

    def alerts(self, run: RunDir) -> list[dict[str, Any]]:
        """The run's reward alerts, oldest first."""
        return [e for e in run.iter_events() if e.get("type") == "alert"]

    def log_tail(self, run: RunDir, lines: int = 200) -> list[str]:
        return tail_lines(run.log_path, lines)

    def checkpoints(self, run: RunDir) -> list[dict[str, Any]]:
        """Complete checkpoints of every phase, oldest first, with the metrics at their step;
        `best` marks the one with the highest mean reward (see `best_checkpoint`)."""
        found = []
        for phase in ("pre_training", "sft", "grpo"):
            for path in run.complete_checkpoints(phase):
                info = read_json(path / CHECKPOINT_MARKER, default={}) or {}
                if info.get("phase", phase) != phase:  # sft and grpo share checkpoints/
                    continue
                found.append({"name": path.name, "phase": phase, "step": checkpoint_step(path),
                              "path": str(path.relative_to(run.path)),
                              "metrics": info.get("metrics") or {}})
        best = best_checkpoint(found)
        return [{**c, "best": c is best} for c in found]

    def config(self, run: RunDir) -> dict[str, Any]:
        return read_json(run.config_path, default={})

    def config_problems(self, run: RunDir) -> list[dict[str, str]]:
        try:
            load_config(run.config_path)
        except ConfigError as err:
            return err.problems
        return []


def best_checkpoint(checkpoints: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The checkpoint whose metrics have the highest mean reward (`reward`), the later one on a
    tie; None when no checkpoint has a reward (SFT checkpoints have none)."""
    rewarded = [c for c in checkpoints if _is_number(c["metrics"].get("reward"))]
    return max(reversed(rewarded), key=lambda c: c["metrics"]["reward"], default=None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def summarise(events: list[dict[str, Any]]) -> dict[str, Any]:
    """best_reward, last metrics, and seconds spent running (summed over every start)."""
    history = metric_history(events)
    rewards = [e["reward"] for e in history if isinstance(e.get("reward"), (int, float))]
    last = history[-1] if history else {}
    closed, since = running_time(events)
    return {"best_reward": max(rewards) if rewards else None,
            "last_metrics": _metric_values(last),
            "num_tokens": last.get("num_tokens"),
            "_closed_seconds": closed, "_running_since": since}


def running_time(events: Iterable[dict[str, Any]]) -> tuple[float, float | None]:
    """Seconds of the finished running stretches, and when the open one began (or None)."""
    total, since = 0.0, None
    for e in events:
        if e.get("type") != "status":
            continue
        if e.get("status") == "running":
            since = since if since is not None else e.get("time")
        elif since is not None:
            total += e.get("time", since) - since
            since = None
    return total, since


def _metric_values(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in EVENT_KEYS}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def tail_lines(path: Path, count: int, block: int = 65536) -> list[str]:
    """The last `count` lines of a text file, reading from its end."""
    if count <= 0:
        return []
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            end = f.tell()
            data = b""
            while end > 0 and data.count(b"\n") <= count:
                start = max(0, end - block)
                f.seek(start)
                data = f.read(end - start) + data
                end = start
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return list(deque(lines, maxlen=count))


def _sample_text(sample: dict[str, Any]) -> str:
    parts = [sample.get("prompt"), sample.get("reference"), *(sample.get("completions") or [])]
    return "\n".join(str(p) for p in parts if p is not None).lower()
