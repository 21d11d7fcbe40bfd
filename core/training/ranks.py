"""The processes of a data-parallel run (`accelerate launch`, one per GPU): which one this is,
one record of the run, and one decision to stop.

Guarantees: `process_rank()` is RANK as the launcher set it (0 for a run of one process). Only
rank 0 writes the run's record: the others train on a `FollowerRun`, whose state and event writes
and checkpoint clean-up do nothing. `agreed_request` all-reduces a stop or pause request across
the processes (a stop wins over a pause), so every process ends at the same step with the same
request, whichever of them the signal reached; `barrier()` waits for every process (after a
phase's result is written, before the next phase reads it). Alone, both return at once.

Does not: import torch itself (it is loaded by then), or handle several machines.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from core.run_dir import RunDir
from core.training.control import PAUSE, STOP

REQUEST_CODES = {None: 0, PAUSE: 1, STOP: 2}


def process_rank() -> int:
    value = os.environ.get("RANK", "0")
    return int(value) if value.isdigit() else 0


def _distributed() -> Any | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available() \
            or not torch.distributed.is_initialized():
        return None
    return torch


def agreed_request(request: str | None) -> str | None:
    """The strongest request any process holds (every process must call this at the same step)."""
    torch = _distributed()
    if torch is None:
        return request
    device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    code = torch.tensor([REQUEST_CODES[request]], device=device)
    torch.distributed.all_reduce(code, op=torch.distributed.ReduceOp.MAX)
    return {v: k for k, v in REQUEST_CODES.items()}[int(code.item())]


def barrier() -> None:
    torch = _distributed()
    if torch is not None:
        torch.distributed.barrier()


class FollowerRun(RunDir):
    """A run directory as a process other than rank 0 sees it: read, never written."""

    def update_state(self, **changes: Any) -> dict[str, Any]:
        return {}

    def append_event(self, type: str, **fields: Any) -> dict[str, Any]:
        return {}

    def remove_incomplete_checkpoints(self, phase: str) -> list:
        return []
