"""Turning any failure of a run into one line a person can act on (the traceback goes to the log)."""
from __future__ import annotations

from core.config import ConfigError

# Our own errors already say what to fix; their message is shown as is.
_OWN_ERRORS = ("ConfigError", "DatasetError", "ModelError", "RewardError", "DefaultModelError")


def is_out_of_memory(err: BaseException) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return "outofmemory" in text.replace(" ", "") or "out of memory" in text or \
        "can't allocate memory" in text or isinstance(err, MemoryError)


def describe_error(err: BaseException, phase: str | None, step: int | None) -> str:
    where = f" at step {step}" if step else ""
    where += f" ({phase})" if phase else ""
    if isinstance(err, ConfigError) or type(err).__name__ in _OWN_ERRORS:
        return str(err)
    if is_out_of_memory(err):
        return (f"Out of memory{where}: lower training.batch_size, algorithm.num_generations or "
                f"algorithm.max_completion_length (or use method 'qlora' / a smaller model)")
    if isinstance(err, KeyboardInterrupt):
        return f"Interrupted{where} before a checkpoint could be saved; resume continues from " \
               f"the last complete checkpoint"
    lines = str(err).strip().splitlines()
    detail = f": {lines[0][:300]}" if lines else ""
    return f"{type(err).__name__}{where}{detail} (full traceback in worker.log)"
