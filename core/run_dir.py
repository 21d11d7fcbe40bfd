"""A run directory `outputs/<run_id>/` (DESIGN.md §3): the source of truth for one run.

Guarantees: `state.json` is only ever replaced atomically; `events.jsonl` is only appended to, one
JSON object per line with `type` and `time`; a checkpoint counts only once `checkpoint.json` (written
after the trainer finished saving it) is inside, and a symlinked checkpoint folder never counts;
`metric_history` gives each step once, even after a resume replayed steps that had been logged
after the checkpoint it resumed from.

Does not: start or watch processes (services/jobs.py and core/worker.py do), import torch.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from core.config import RunConfig, save_config
from core.files import read_json, write_json_atomic

STATUSES = ("queued", "running", "paused", "stopping", "completed", "failed", "cancelled",
            "interrupted")
FINAL_STATUSES = ("completed", "failed", "cancelled")
# a worker that ends in one of these did what was asked of it (exit status 0)
CLEAN_END_STATUSES = ("completed", "paused", "cancelled")
CHECKPOINT_MARKER = "checkpoint.json"

EventListener = Callable[[dict[str, Any]], None]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "run"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


class RunDir:
    """Paths and read/write helpers of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.listeners: list[EventListener] = []

    @property
    def run_id(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    state_path = property(lambda self: self.path / "state.json")
    events_path = property(lambda self: self.path / "events.jsonl")
    log_path = property(lambda self: self.path / "worker.log")
    adapter_dir = property(lambda self: self.path / "adapter")
    model_dir = property(lambda self: self.path / "model")
    pre_training_dir = property(lambda self: self.path / "pre_training")

    def checkpoints_dir(self, phase: str) -> Path:
        """GRPO / SFT checkpoints live in `checkpoints/`; the SFT pre-training phase keeps its own
        under `pre_training/checkpoints/` so step numbers never collide."""
        if phase == "pre_training":
            return self.pre_training_dir / "checkpoints"
        return self.path / "checkpoints"

    # state.json ---------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any]:
        state = read_json(self.state_path)
        if state is None:
            raise FileNotFoundError(f"{self.path} is not a run directory (no state.json)")
        return state

    def update_state(self, **changes: Any) -> dict[str, Any]:
        state = read_json(self.state_path, default={})
        state.update(changes)
        write_json_atomic(self.state_path, state)
        return state

    # events.jsonl -------------------------------------------------------------------------
    def append_event(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "time": time.time(), **fields}
        line = json.dumps(event, ensure_ascii=False, default=_json_default)
        with self.events_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        for listener in self.listeners:
            listener(event)
        return event

    def iter_events(self) -> Iterator[dict[str, Any]]:
        """Every complete event line (a torn last line from a crash is skipped)."""
        try:
            with self.events_path.open(encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):
                        try:
                            yield json.loads(line)
                        except json.JSONDecodeError:
                            continue
        except FileNotFoundError:
            return

    def metric_history(self) -> list[dict[str, Any]]:
        return metric_history(self.iter_events())

    # checkpoints --------------------------------------------------------------------------
    def complete_checkpoints(self, phase: str) -> list[Path]:
        """Complete checkpoints of `phase`, oldest first: folders the trainer wrote, never a
        symlink (which may lead out of the run)."""
        root = self.checkpoints_dir(phase)
        found = [p for p in root.glob("checkpoint-*")
                 if not p.is_symlink() and (p / CHECKPOINT_MARKER).is_file()]
        return sorted(found, key=checkpoint_step)

    def newest_checkpoint(self, phase: str) -> Path | None:
        found = self.complete_checkpoints(phase)
        return found[-1] if found else None

    def remove_incomplete_checkpoints(self, phase: str) -> list[Path]:
        removed = [p for p in self.checkpoints_dir(phase).glob("checkpoint-*")
                   if not (p / CHECKPOINT_MARKER).is_file()]
        for p in removed:
            shutil.rmtree(p, ignore_errors=True)
        return removed


def remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint folder, its marker first: a crash half-way leaves an incomplete
    checkpoint (never listed; a worker removes those of its phase when it starts), never one that
    looks complete."""
    (folder / CHECKPOINT_MARKER).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return str(value)


def metric_history(events: Any) -> list[dict[str, Any]]:
    """Metric events in order, each (phase, step) once: a `resume` event at step S of a phase
    drops that phase's earlier metrics logged after S, which the resumed run logs again."""
    kept: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "resume":
            phase, step = event.get("phase"), event.get("step", 0)
            kept = [e for e in kept if e.get("phase") != phase or e.get("step", 0) <= step]
        elif event.get("type") == "metric":
            kept.append(event)
    return kept


def create_run(config: RunConfig, outputs_root: str | Path = "outputs",
               run_id: str | None = None) -> RunDir:
    """Make a new run directory holding config.json and a `queued` state.json; FileExistsError
    when `run_id` is taken."""
    run = RunDir(Path(outputs_root) / (run_id or new_run_id(config.output.name)))
    run.path.parent.mkdir(parents=True, exist_ok=True)
    run.path.mkdir(parents=True, exist_ok=False)
    save_config(config, run.config_path)
    write_json_atomic(run.state_path, {
        "run_id": run.run_id, "name": config.output.name, "status": "queued", "phase": None,
        "step": 0, "total_steps": None, "pid": None, "created_at": now_iso(),
        "started_at": None, "finished_at": None, "error": None, "resumed_from": None})
    return run


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
