"""The training worker: `python -m core.worker outputs/<run_id>` runs one run to its end.

Guarantees: state.json moves queued/interrupted/paused -> running -> completed | paused | cancelled
| failed, written atomically, with `pid`, `started_at`, `finished_at`; each change is also a `status`
event; a failure ends `failed` with a one-line `error` (core/errors.py), the traceback in
worker.log. SIGTERM/SIGINT stop with a checkpoint, SIGUSR1 pauses (core/training/control.py).
The CLI runs the same `run_worker` in the foreground.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback

from core.config import load_config
from core.errors import describe_error
from core.run_dir import RunDir, now_iso, pid_alive
from core.training.control import RunControl

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
    """Run (or resume) the run in this process; the final status."""
    check_startable(run)
    control = control or RunControl()
    run.update_state(status="running", pid=os.getpid(), started_at=now_iso(), finished_at=None,
                     error=None)
    run.append_event("status", status="running")
    error = None
    try:
        status = _train(run, control)
    except BaseException as err:  # the run must end with a readable status, whatever happened
        state = run.read_state()
        error = describe_error(err, state.get("phase"), state.get("step"))
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        log.error("run failed: %s\n%s", error, traceback.format_exc())
    run.update_state(status=status, error=error, finished_at=now_iso(), eta_seconds=None)
    run.append_event("status", status=status, **({"error": error} if error else {}))
    return status


def _train(run: RunDir, control: RunControl) -> str:
    cfg = load_config(run.config_path)
    if cfg.compute.gpu_ids:  # before torch is imported, so only these GPUs are visible
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in cfg.compute.gpu_ids)
    from core.models import import_backend_first
    import_backend_first(cfg.model)
    from core.training.phases import run_training  # heavy imports only once the run starts
    return run_training(run, cfg, control)


def configure_logging(run: RunDir, to_stderr: bool) -> None:
    handler = logging.FileHandler(run.log_path, encoding="utf-8") if not to_stderr \
        else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _redirect_output(run: RunDir) -> None:
    """Everything written to stdout/stderr (C libraries included) goes to worker.log."""
    fd = os.open(run.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", closefd=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.worker outputs/<run_id>", file=sys.stderr)
        return 2
    run = RunDir(args[0])
    if not run.state_path.is_file():
        print(f"{run.path} is not a run directory (no state.json)", file=sys.stderr)
        return 2
    _redirect_output(run)
    configure_logging(run, to_stderr=True)
    control = RunControl()
    control.install_signal_handlers()
    try:
        status = run_worker(run, control)
    except RunNotStartable as err:
        log.error("%s", err)
        return 1
    return 0 if status in ("completed", "paused", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
