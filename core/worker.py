"""The training worker: `python -m core.worker outputs/<run_id>` runs one run to its end.

Guarantees: state.json moves queued/interrupted/paused -> running -> completed | paused | cancelled
| failed, written atomically, with `pid`, `started_at`, `finished_at` and `measured` (this session's
wall seconds and peak memory, beside the launch's estimate.json); each change is also a `status`
event; a failure ends `failed` with a one-line `error` (core/errors.py), the traceback in
worker.log. SIGTERM/SIGINT stop with a checkpoint, SIGUSR1 pauses (core/training/control.py).
Started by the web server (`GRPO_STUDIO_PARENT_PID` set), the worker pauses with a checkpoint when
that server goes away, however it went, so a restarted server finds the run `paused` and resumable.
The CLI runs the same `run_worker` in the foreground.
"""
from __future__ import annotations

import logging
import os
import resource
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Iterator

from core.config import load_config
from core.errors import describe_error
from core.launch import PARENT_ENV, worker_gpu_environment
from core.run_dir import CLEAN_END_STATUSES, RunDir, now_iso, pid_alive
from core.training.control import PAUSE, RunControl
from core.training.ranks import FollowerRun, process_rank

log = logging.getLogger("grpo_studio.worker")


class RunNotStartable(RuntimeError):
    pass


def check_startable(run: RunDir) -> None:
    state = run.read_state()
    if state.get("status") == "completed":
        raise RunNotStartable(f"run {run.run_id} has already completed")
    if state.get("status") in ("running", "stopping") and state.get("pid") != os.getpid() \
            and pid_alive(state.get("pid")):
        raise RunNotStartable(f"run {run.run_id} is already running (pid {state['pid']})")


def run_worker(run: RunDir, control: RunControl | None = None) -> str:
    """Run (or resume) the run in this process; the final status. In a data-parallel launch
    only rank 0 keeps the run's record; the other processes train beside it."""
    control = control or RunControl()
    if process_rank() != 0:
        return _train(FollowerRun(run.path), control)
    check_startable(run)
    started = time.monotonic()
    run.update_state(status="running", pid=os.getpid(), started_at=now_iso(), finished_at=None,
                     error=None, measured=None, eta_generation_seconds=None,
                     eta_update_seconds=None)
    run.append_event("status", status="running")
    error = None
    try:
        status = _train(run, control)
    except BaseException as err:  # the run must end with a readable status, whatever happened
        state = run.read_state()
        error = describe_error(err, state.get("phase"), state.get("step"))
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        log.error("run failed: %s\n%s", error, traceback.format_exc())
    run.update_state(status=status, error=error, finished_at=now_iso(), eta_seconds=None,
                     measured=measured_usage(started))
    run.append_event("status", status=status, **({"error": error} if error else {}))
    return status


def measured_usage(started: float) -> dict[str, Any]:
    """What this worker session used, for the run's record beside the estimate made at launch:
    wall seconds, peak resident memory, and the GPU's peak reserved memory when CUDA was used."""
    found: dict[str, Any] = {"seconds": round(time.monotonic() - started, 1),
                             "peak_ram_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                             * 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        found["peak_gpu_bytes"] = int(torch.cuda.max_memory_reserved())
    return found


def _train(run: RunDir, control: RunControl) -> str:
    cfg = load_config(run.config_path)
    # before torch is imported: the GPUs its launch chose (core/launch.py)
    os.environ.update(worker_gpu_environment(cfg.compute, os.environ))
    from core.models import import_backend_first
    import_backend_first(cfg.model)
    from core.training.phases import run_training  # heavy imports only once the run starts
    return run_training(run, cfg, control)


def pause_when_parent_dies(control: RunControl, parent_pid: int, interval: float = 1.0) -> None:
    """Ask `control` to pause once the server `parent_pid` is gone: for a worker it started, once
    this process's parent is no longer that server (sure even if its pid is reused); for a rank of
    `accelerate launch` (whose parent is the launcher), once that pid no longer runs."""
    started_by_server = os.getppid() == parent_pid

    def server_runs() -> bool:
        return os.getppid() == parent_pid if started_by_server else pid_alive(parent_pid)

    def watch() -> None:
        while server_runs():
            time.sleep(interval)
        log.warning("the server (pid %d) is gone: pausing with a checkpoint", parent_pid)
        control.ask(PAUSE)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@contextmanager
def output_to_log(run: RunDir) -> Iterator[None]:
    """Inside: everything written to stdout/stderr (C libraries included) and every log record
    goes to the run's worker.log. After: the previous stdout/stderr and handlers come back."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2), sys.stdout, sys.stderr
    fd = os.open(run.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", closefd=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        sys.stdout, sys.stderr = saved[2], saved[3]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.worker outputs/<run_id>", file=sys.stderr)
        return 2
    run = RunDir(args[0])
    if not run.state_path.is_file():
        print(f"{run.path} is not a run directory (no state.json)", file=sys.stderr)
        return 2
    control = RunControl()
    if os.environ.get(PARENT_ENV, "").isdigit():
        pause_when_parent_dies(control, int(os.environ[PARENT_ENV]))
    with output_to_log(run), control.signal_handlers():
        try:
            status = run_worker(run, control)
        except RunNotStartable as err:
            log.error("%s", err)
            return 1
    return 0 if status in CLEAN_END_STATUSES else 1


if __name__ == "__main__":
    sys.exit(main())
