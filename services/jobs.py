"""Training jobs: every run trains in its own worker process, `python -m core.worker outputs/<id>`.

Guarantees:
- one worker per device at a time; every start waits as `queued` until the watcher (`tick`, every
  quarter second) launches it, first queued first started, when its device is free (a queue
  position is part of each listing). The queue is kept in memory (only this service makes a run
  `queued`) and rebuilt from the run directories at start;
- at start every run directory is found again: a `running`/`stopping` run whose worker is gone
  becomes `interrupted` (resumable); a worker still alive from an earlier server (its pid is in
  `worker.pid`) is watched again; an unreadable run directory is skipped and logged;
- each new line of a watched run's events.jsonl and worker.log is published once, in order, to the
  run's room (`publish(event, payload, room)`), mapped as API.md's Socket.IO table says;
- Stop sends SIGTERM to the worker's process group (checkpoint, `cancelled`); a second Stop while it
  is stopping kills the group at once (SIGKILL: the newest complete checkpoint stays). Pause sends
  SIGUSR1 (checkpoint, `paused`); Resume queues the run again and the worker continues from its
  newest complete checkpoint, or from a chosen one (the later checkpoints of its phase are deleted
  first, services/checkpoints.py); a checkpoint is deleted only while the run has no worker and
  is not queued;
- a worker is started by the command of core/launch.py (one process pinned to its GPU, or
  `accelerate launch` across several); a device is one GPU, and a run holds every GPU it chose,
  so runs start together only on disjoint GPUs;
- workers are told the server's pid and pause by themselves when the server dies (core/worker.py);
- a worker that dies without writing its end (killed, out of memory) is marked `failed` (resumable)
  within a watcher tick, with its exit status or signal named, and whatever is left of its process
  group is killed, so nothing of it outlives it.

Does not: import Flask or torch, or decide what a client may do (routes check the request).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from core.config import ComputeSection, RunConfig
from core.files import read_json
from core.launch import worker_command
from core.run_dir import FINAL_STATUSES, RunDir, create_run, now_iso, pid_alive
from services.checkpoints import delete_checkpoint, rewind_to_checkpoint
from services.runs import RunStore, valid_run_id

REPO_ROOT = Path(__file__).resolve().parent.parent
RESUMABLE = ("paused", "interrupted", "cancelled", "failed")
LAUNCH_PID_FILE = "worker.pid"
LIVE = ("running", "stopping")
Publish = Callable[[str, dict[str, Any], str], None]
log = logging.getLogger("grpo_studio.jobs")


class JobConflict(RuntimeError):
    """The request does not fit the run's status (HTTP 409)."""


class BadSessionId(ValueError):
    """A client-chosen run id that cannot name a run directory (HTTP 400)."""
    field = "session_id"


class FileTail:
    """New complete lines of a growing file, from a starting offset."""

    def __init__(self, path: Path, from_end: bool = True):
        self.path = path
        self.offset = path.stat().st_size if from_end and path.exists() else 0
        self.partial = b""

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]


@dataclass
class Worker:
    """A worker process being watched: started here (`process`) or found alive at start."""
    run: RunDir
    device: str
    pid: int
    process: subprocess.Popen | None = None
    events: FileTail | None = None   # None: from the files' current ends
    log: FileTail | None = None

    def __post_init__(self) -> None:
        self.events = self.events or FileTail(self.run.events_path)
        self.log = self.log or FileTail(self.run.log_path)

    def exit_code(self) -> int | None:
        """None while alive; the exit status (or -1 when unknown) once it ended."""
        if self.process is not None:
            return self.process.poll()
        return None if pid_alive(self.pid) and _is_worker_of(self.pid, self.run) else -1


ETA_KEYS = ("eta_seconds", "eta_generation_seconds", "eta_update_seconds")


def socket_message(run_id: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Socket.IO event name and payload for one events.jsonl record."""
    kind = event.get("type")
    if kind == "metric":
        meta = ("type", "time", "step", "phase", "total_steps", *ETA_KEYS)
        return "training_update", {
            "session_id": run_id, "step": event.get("step"), "phase": event.get("phase"),
            "total_steps": event.get("total_steps"), "time": event.get("time"),
            **{key: event[key] for key in ETA_KEYS if key in event},
            "eta_seconds": event.get("eta_seconds"),
            "metrics": {k: v for k, v in event.items() if k not in meta}}
    if kind == "sample":
        return "training_sample", {"session_id": run_id, **event}
    if kind == "alert":
        return "training_alert", {"session_id": run_id, **event}
    if kind == "status":
        return "training_status", {"session_id": run_id, "status": event.get("status"),
                                   **({"error": event["error"]} if event.get("error") else {})}
    return "training_event", {"session_id": run_id, **event}


class Jobs:
    """Starts, queues, watches and signals the training workers of one outputs root."""

    def __init__(self, store: RunStore, publish: Publish, python: str = sys.executable,
                 poll_seconds: float = 0.25):
        self.store, self.publish, self.python = store, publish, python
        self.poll_seconds = poll_seconds
        self.workers: dict[str, Worker] = {}   # run_id -> watched worker
        self.queue: list[tuple[str, str]] = []  # (run_id, device), first to start first
        self.requests: dict[str, str] = {}     # run_id -> "stop" | "pause" asked of a live worker
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Find every run again, then watch and schedule in a background thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread:
            self._thread.join(timeout=5)

    def recover(self) -> None:
        queued = []
        for run in self.store.runs():
            state = self.store.state(run)
            status = state.get("status")
            # a queued run may have been launched just before the restart; a paused or ended
            # run's worker may still be exiting, and is not watched again
            pid = state.get("pid") if status in LIVE else \
                _launched_pid(run) if status == "queued" else None
            if pid and pid_alive(pid) and _is_worker_of(pid, run):
                self.workers[run.run_id] = Worker(run, device_of(run), pid)
            elif status in LIVE:
                self._set_status(run, "interrupted", "the worker stopped while the server was "
                                 "not running", finished_at=now_iso())
            elif status == "queued":
                queued.append((state.get("queued_at") or state.get("created_at") or "", run))
        self.queue = [(run.run_id, device_of(run)) for _, run in sorted(queued, key=_first)]

    def _loop(self) -> None:
        while not self._closed.wait(self.poll_seconds):
            try:
                self.tick()
            except Exception:  # the watcher must outlive any one bad run directory
                log.exception("jobs watcher")

    def tick(self) -> None:
        """Publish new lines, notice ended workers, start queued runs on free devices."""
        with self._lock:
            for run_id, worker in list(self.workers.items()):
                self._pump(worker)
                code = worker.exit_code()
                if code is not None:
                    self._pump(worker)
                    self._ended(worker, code)
            self._schedule()

    # requests ---------------------------------------------------------------------------------
    def submit(self, config: RunConfig, run_id: str | None = None, queue: bool = True) -> RunDir:
        """Create a run and queue it; with queue=False refuse (JobConflict) if its device is busy."""
        if run_id is not None and not valid_run_id(run_id):
            raise BadSessionId(f"session_id {run_id!r} may use only letters, digits, '.', '_' "
                             "and '-' (at most 128)")
        with self._lock:
            device = _device(config.compute.gpu_ids)
            if not queue and (self._busy(device) or any(_overlap(d, device)
                                                         for _, d in self.queue)):
                raise JobConflict(f"device {device} is busy and queueing is off")
            try:
                run = create_run(config, self.store.outputs, run_id=run_id)
            except FileExistsError:
                raise JobConflict(f"a run with session_id {run_id!r} already exists") from None
            run.update_state(queued_at=queue_stamp())
            self.queue.append((run.run_id, device))
        return run  # the watcher starts it (tick), so every launch happens in one place

    def stop(self, run_id: str) -> str:
        with self._lock:
            run, status = self._run_status(run_id)
            if run_id in self.workers and status in LIVE + ("queued",):
                force = self.requests.get(run_id) == "stop"
                self._signal(self.workers[run_id], signal.SIGKILL if force else signal.SIGTERM)
                self.requests[run_id] = "stop"
                self._publish_status(run, "stopping")
                return "killed" if force else "stopping"
            if run_id not in self.workers and status in ("queued", "paused", "interrupted"):
                self._unqueue(run_id)
                self._set_status(run, "cancelled", finished_at=now_iso())
                return "cancelled"
            raise JobConflict(f"run {run_id} is {status}; there is nothing to stop")

    def pause(self, run_id: str) -> str:
        with self._lock:
            run, status = self._run_status(run_id)
            if run_id in self.workers and status in LIVE + ("queued",):
                if self.requests.get(run_id) == "stop":
                    raise JobConflict(f"run {run_id} is stopping")
                self._signal(self.workers[run_id], signal.SIGUSR1)
                self.requests[run_id] = "pause"
                return "pausing"
            if run_id not in self.workers and status == "queued":
                self._unqueue(run_id)
                self._set_status(run, "paused")
                return "paused"
            raise JobConflict(f"run {run_id} is {status}; only a running or queued run pauses")

    def resume(self, run_id: str, checkpoint: str | None = None,
               phase: str | None = None) -> str:
        """Queue the run again; with `checkpoint` (a name from its checkpoint list, of `phase`
        when given) it continues from that one: the later checkpoints of its phase are deleted."""
        with self._lock:
            run, status = self._run_status(run_id)
            if run_id in self.workers or status not in RESUMABLE:
                raise JobConflict(f"run {run_id} is {status}; only a paused, interrupted, "
                                  "cancelled or failed run can be resumed")
            if checkpoint is not None:
                rewind_to_checkpoint(self.store, run, checkpoint, phase)
            self._set_status(run, "queued", queued_at=queue_stamp())
            self.queue.append((run_id, device_of(run)))
            return "queued"

    def delete_checkpoint(self, run_id: str, name: str,
                          phase: str | None = None) -> dict[str, Any]:
        """Delete one complete checkpoint of a run that has no worker and is not queued (a
        worker may be writing or about to resume from it); its listing entry."""
        with self._lock:
            run, status = self._run_status(run_id)
            if run_id in self.workers or status in LIVE + ("queued",):
                raise JobConflict(f"run {run_id} is {status}; pause or stop it before deleting "
                                  "a checkpoint")
            return delete_checkpoint(self.store, run, name, phase)

    # reading ----------------------------------------------------------------------------------
    def queued(self) -> list[str]:
        """Ids of the queued runs, first to start first."""
        with self._lock:
            return [run_id for run_id, _ in self.queue]

    def live_status(self, run_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """What the service knows beyond state.json: a stop or pause in progress, the queue
        position."""
        extra: dict[str, Any] = {}
        asked = self.requests.get(run_id)
        if asked and state.get("status") in LIVE + ("queued",):
            extra["status"] = "stopping" if asked == "stop" else "pausing"
        if state.get("status") == "queued":
            ids = self.queued()
            extra["queue_position"] = ids.index(run_id) + 1 if run_id in ids else None
        return {**state, **extra}

    # internals -------------------------------------------------------------------------------
    def _run_status(self, run_id: str) -> tuple[RunDir, str]:
        run = self.store.run(run_id)
        return run, self.store.state(run).get("status", "")

    def _unqueue(self, run_id: str) -> None:
        self.queue = [(r, d) for r, d in self.queue if r != run_id]

    def _busy(self, device: str) -> bool:
        return any(_overlap(w.device, device) for w in self.workers.values())

    def _schedule(self) -> None:
        for run_id, device in list(self.queue):
            if not self._busy(device):
                self._unqueue(run_id)
                self._launch(self.store.run(run_id), device)

    def _launch(self, run: RunDir, device: str) -> None:
        argv, added = worker_command(compute_of(run), run.path.resolve(), self.python,
                                     parent_pid=os.getpid())
        events, worker_log = FileTail(run.events_path), FileTail(run.log_path)
        with run.log_path.open("ab") as log_file:  # catches what happens before the worker's log
            process = subprocess.Popen(
                argv, cwd=REPO_ROOT, env={**os.environ, **added}, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=log_file, start_new_session=True)
        # the queued status is left to the worker, which writes `running` within a second; until
        # then this entry keeps the device busy, and worker.pid lets a restarted server find it
        (run.path / LAUNCH_PID_FILE).write_text(str(process.pid))
        self.workers[run.run_id] = Worker(run, device, process.pid, process, events, worker_log)
        log.info("started run %s (pid %d) on device %s", run.run_id, process.pid, device)

    def _pump(self, worker: Worker) -> None:
        room = worker.run.run_id
        for line in worker.events.new_lines():
            event = _parse(line)
            if event is not None:
                name, payload = socket_message(room, event)
                self.publish(name, payload, room)
        for line in worker.log.new_lines():
            self.publish("training_log", {"session_id": room, "line": line}, room)

    def _ended(self, worker: Worker, code: int) -> None:
        run = worker.run
        del self.workers[run.run_id]
        asked = self.requests.pop(run.run_id, None)
        if self.store.state(run).get("status") in FINAL_STATUSES + ("paused", "interrupted"):
            return
        # killed by the very signal asked for: it stopped before its handlers were in place (or
        # was forced), so it did what was asked without a new checkpoint
        if (asked, code) in (("stop", -signal.SIGTERM), ("stop", -signal.SIGKILL),
                             ("pause", -signal.SIGUSR1)):
            status, error = ("cancelled" if asked == "stop" else "paused"), None
        else:
            status = "failed"
            error = (f"the worker ended without finishing ({exit_reason(code)}); "
                     "see worker.log, then resume")
            if worker.process is not None:  # a child of ours: its group is still its own
                self._signal(worker, signal.SIGKILL)  # the rest of its process group goes too
        self._set_status(run, status, error, finished_at=now_iso())

    def _set_status(self, run: RunDir, status: str, error: str | None = None,
                    **changes: Any) -> None:
        """A status change made here (no worker is writing): state.json, event, room."""
        run.update_state(status=status, error=error, **changes)
        run.append_event("status", status=status, **({"error": error} if error else {}))
        self._publish_status(run, status, error)

    def _publish_status(self, run: RunDir, status: str, error: str | None = None) -> None:
        payload = {"session_id": run.run_id, "status": status, **({"error": error} if error else {})}
        self.publish("training_status", payload, run.run_id)

    def _signal(self, worker: Worker, sig: signal.Signals) -> None:
        """Signal the worker's process group (it leads its own session), so its children too."""
        try:
            os.killpg(worker.pid, sig)
        except ProcessLookupError:
            pass  # it just ended; the next tick notices


def queue_stamp() -> str:
    """When a run joined the queue, precise enough to order starts made in the same second."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _launched_pid(run: RunDir) -> int | None:
    try:
        return int((run.path / LAUNCH_PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _first(entry: tuple[str, RunDir]) -> tuple[str, str]:
    return entry[0], entry[1].run_id


def compute_of(run: RunDir) -> ComputeSection:
    """The run's compute settings; the defaults when they cannot be read (the worker then names
    what is wrong with the config)."""
    config = read_json(run.config_path, default={}) or {}
    try:
        return ComputeSection.model_validate(config.get("compute") or {})
    except ValidationError:
        return ComputeSection()


def device_of(run: RunDir) -> str:
    return _device(compute_of(run).gpu_ids)


def _device(gpu_ids: list[int]) -> str:
    """The GPUs a run holds, as "0" or "0,1": a run without gpu_ids uses the first (or the CPU)."""
    return ",".join(str(i) for i in gpu_ids) if gpu_ids else "0"


def _overlap(device: str, other: str) -> bool:
    """Whether two runs' devices share a GPU (one run trains at a time per GPU)."""
    return bool(set(device.split(",")) & set(other.split(",")))


def exit_reason(code: int) -> str:
    if code < 0 and code != -1:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else ""
        hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
        return f"killed by signal {-code} {name}{hint}".replace("  ", " ")
    if code == -1:
        return "exit status unknown"
    return f"exit status {code}"


def _is_worker_of(pid: int, run: RunDir) -> bool:
    """Whether `pid` is a core.worker process of this run (a recycled pid is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc (macOS): trust the pid
    return b"core.worker" in cmdline and \
        any(Path(arg.decode(errors="replace")).name == run.run_id for arg in cmdline)


def _parse(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None

