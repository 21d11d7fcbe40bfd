"""Changing a run's checkpoints from the checkpoint browser: delete one, or go back to one so that
a resume continues from it.

Guarantees:
- a checkpoint is named by its `name` in the run's own listing (`RunStore.checkpoints`: complete
  checkpoints only), with an optional `phase` for an SFT pre-training checkpoint whose name the
  main phase also uses (without it the main phase's comes first, as for exports). Anything else,
  a path or `..` included, is CheckpointNotFound: folders are found through the listing, never
  built from the request;
- a folder is removed marker first (`core.run_dir.remove_checkpoint`), so a crash half-way never
  leaves a checkpoint that looks complete;
- going back to a checkpoint deletes the later checkpoints of its phase, so the worker's "newest
  complete checkpoint" (core/training/phases.py) is the chosen one, and the `resume` event the
  worker then writes drops the later steps' metrics from the history. Only a checkpoint of the
  phase the run is in can be gone back to: an earlier phase has finished and left its result.

Does not: check whether a worker is using the run: services/jobs.py calls these under its lock,
only for a run without a worker. Does not import Flask.
"""
from __future__ import annotations

import logging
from typing import Any

from core.run_dir import RunDir, remove_checkpoint
from services.runs import RunStore

MAIN_PHASES = ("sft", "grpo")
log = logging.getLogger("grpo_studio.checkpoints")


class CheckpointNotFound(LookupError):
    """No complete checkpoint of this name in the run (HTTP 404)."""
    field = "checkpoint"


class CheckpointNotResumable(RuntimeError):
    """The checkpoint belongs to a phase the run has finished (HTTP 409)."""
    field = "checkpoint"


def find_checkpoint(store: RunStore, run: RunDir, name: object,
                    phase: str | None = None) -> dict[str, Any]:
    """The listing entry of checkpoint `name` (of `phase` when given)."""
    found = [c for c in store.checkpoints(run)
             if c["name"] == name and (phase is None or c["phase"] == phase)]
    if not found:
        names = ", ".join(sorted({c["name"] for c in store.checkpoints(run)})) or "none"
        raise CheckpointNotFound(f"run {run.run_id} has no complete checkpoint {name!r}"
                                 + (f" in phase {phase!r}" if phase else "")
                                 + f"; its checkpoints: {names}")
    return max(found, key=lambda c: c["phase"] in MAIN_PHASES)


def delete_checkpoint(store: RunStore, run: RunDir, name: object,
                      phase: str | None = None) -> dict[str, Any]:
    """Delete one complete checkpoint; its listing entry."""
    entry = find_checkpoint(store, run, name, phase)
    remove_checkpoint(run.path / entry["path"])
    log.info("run %s: deleted %s", run.run_id, entry["path"])
    return entry


def rewind_to_checkpoint(store: RunStore, run: RunDir, name: object,
                         phase: str | None = None) -> list[str]:
    """Make checkpoint `name` the newest of its phase by deleting the later ones; their names."""
    entry = find_checkpoint(store, run, name, phase)
    current = store.state(run).get("phase")
    if entry["phase"] != current:
        raise CheckpointNotResumable(
            f"{entry['name']} belongs to the {entry['phase']} phase, which has finished; resume "
            f"from a checkpoint of the {current} phase")
    later = [c for c in store.checkpoints(run)
             if c["phase"] == entry["phase"] and c["step"] > entry["step"]]
    for checkpoint in later:
        remove_checkpoint(run.path / checkpoint["path"])
    log.info("run %s: back to %s, later checkpoints deleted: %s", run.run_id, entry["path"],
             [c["name"] for c in later])
    return [c["name"] for c in later]
