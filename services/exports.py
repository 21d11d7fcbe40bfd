"""Exports for the web app: create one from a run (or a checkpoint), run it in a worker process,
report its progress, list, download and delete them.

Guarantees: every export is a folder `<exports root>/<export_id>/` whose `export.json` (written by
core.export) is the source of truth; the server-chosen id is the only handle a client gets; a file
is downloaded by export id and a name listed in that export's `files`, never by a client-given path,
both resolved by core.files.resolve_inside (a symlink leading out of the exports root, or a hidden
file, is never served). Exports run one at a time in `python -m core.export <dir>` worker processes
(in their own session, log in `export.log`), in the order they were asked for; progress changes are
published as `export_progress`. An export whose worker died without finishing is shown as failed,
with the exit status. Deleting a running export stops its worker first.

Does not: import torch or core.export's heavy parts (the worker does the work), verify exports
itself (the worker only reports `done` after verification).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

from core.export.request import (EXPORT_ID, STATE_FILE, ExportRequestError, create_export,
                                 normalize_quantization)
from core.files import PathRefused, read_json, resolve_inside, write_json_atomic
from core.run_dir import now_iso, pid_alive
from services.runs import RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRESS_KEYS = ("status", "progress", "message", "error")
log = logging.getLogger("grpo_studio.exports")
Publish = Callable[[str, dict[str, Any], Any], None]


class ExportNotFound(LookupError):
    pass


class Exports:
    """The exports under `root`, and the one worker running at a time."""

    def __init__(self, root: str | Path, runs: RunStore, publish: Publish,
                 python: str = sys.executable, poll_seconds: float = 0.5):
        self.root, self.runs, self.publish = Path(root), runs, publish
        self.python, self.poll_seconds = python, poll_seconds
        self.running: tuple[str, subprocess.Popen] | None = None
        self.queue: list[str] = []
        self.last_seen: dict[str, tuple] = {}
        self.requesters: dict[str, str] = {}   # export id -> Socket.IO sid to tell
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- reading ----------------------------------------------------------------------------
    def folder(self, export_id: str) -> Path:
        if not isinstance(export_id, str) or not EXPORT_ID.match(export_id):
            raise ExportNotFound(f"no export {export_id!r}")
        try:
            path = resolve_inside(self.root, export_id)
        except PathRefused:  # e.g. a symlink to a folder elsewhere
            raise ExportNotFound(f"no export {export_id!r}") from None
        if not (path / STATE_FILE).is_file():
            raise ExportNotFound(f"no export {export_id!r}")
        return path

    def get(self, export_id: str) -> dict[str, Any]:
        state = read_json(self.folder(export_id) / STATE_FILE, default=None)
        if not isinstance(state, dict):
            raise ExportNotFound(f"export {export_id!r} has no readable state")
        files = state.get("files") or []
        return {**state, "export_id": export_id,
                "size": sum(f.get("size", 0) for f in files if isinstance(f, dict))}

    def list(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.root.glob(f"*/{STATE_FILE}")):
            try:
                found.append(self.get(path.parent.name))
            except ExportNotFound:
                continue
        return sorted(found, key=lambda e: e.get("created_at") or "", reverse=True)

    def file_path(self, export_id: str, name: str) -> Path:
        """A file of the export, by a name its state lists (never a client-given path)."""
        state = self.get(export_id)
        listed = {f.get("name") for f in state.get("files") or [] if isinstance(f, dict)}
        if name not in listed:
            raise ExportNotFound(f"export {export_id!r} has no file {name!r}")
        try:
            path = resolve_inside(self.folder(export_id), name)
        except PathRefused:
            path = None
        if path is None or not path.is_file():
            raise ExportNotFound(f"export {export_id!r} has no file {name!r}")
        return path

    # ---- creating ---------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("format")
        quantization = body.get("quantization")
        quantization = normalize_quantization(fmt, quantization)
        source, label = self._source(body)
        export_id = f"{label}-{fmt}{'-' + quantization if quantization else ''}-" \
                    f"{uuid.uuid4().hex[:6]}"
        create_export(self.root, export_id, fmt, quantization, source)
        if isinstance(body.get("socket_id"), str):
            self.requesters[export_id] = body["socket_id"]
        with self._lock:
            self.queue.append(export_id)
        self.tick()
        return {"export_id": export_id, "status": "queued"}

    def _source(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        session_id = body.get("session_id")
        if not isinstance(session_id, str):
            raise ExportRequestError("choose the run to export (session_id)", "session_id")
        run = self.runs.run(session_id)
        checkpoint = body.get("checkpoint")
        if checkpoint is not None:
            names = {c["name"] for c in self.runs.checkpoints(run)}
            if checkpoint not in names:
                raise ExportRequestError(f"run {session_id!r} has no complete checkpoint "
                                         f"{checkpoint!r}", "checkpoint")
        elif not (run.path / "adapter").is_dir() and not (run.path / "model").is_dir():
            raise ExportRequestError(f"run {session_id!r} has no trained result yet; let it "
                                     f"finish or choose a checkpoint", "session_id")
        return {"run_dir": str(run.path.resolve()), "checkpoint": checkpoint}, run.run_id

    def delete(self, export_id: str) -> None:
        folder = self.folder(export_id)
        with self._lock:
            if export_id in self.queue:
                self.queue.remove(export_id)
            if self.running and self.running[0] == export_id:
                self._stop(self.running[1])
                self.running = None
        shutil.rmtree(folder)
        self.last_seen.pop(export_id, None)

    # ---- the worker -------------------------------------------------------------------------
    def start(self) -> None:
        """Exports left queued or running by a previous server: running ones whose worker is
        gone are failed, queued ones wait again; then the watcher thread starts."""
        for state in self.list():
            if state.get("status") == "running" and not pid_alive(state.get("pid") if isinstance(state.get("pid"), int) else None):
                self._fail(state["export_id"], "the server stopped while this export ran; "
                                               "export again")
            elif state.get("status") == "queued":
                self.queue.append(state["export_id"])
        self._thread = threading.Thread(target=self._watch, name="exports", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _watch(self) -> None:
        while not self._closed.wait(self.poll_seconds):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad export
                log.exception("exports watcher")

    def tick(self) -> None:
        """Publishes progress; ends a finished worker; starts the next queued export."""
        with self._lock:
            if self.running:
                export_id, process = self.running
                self._publish_progress(export_id)
                code = process.poll()
                if code is not None:
                    self.running = None
                    state = read_json(self.root / export_id / STATE_FILE, default={}) or {}
                    if state.get("status") not in ("done", "failed"):
                        self._fail(export_id, f"the export worker ended (exit status {code}) "
                                              f"without finishing; see export.log")
                    self._publish_progress(export_id)
            while not self.running and self.queue:
                export_id = self.queue.pop(0)
                if (self.root / export_id / STATE_FILE).is_file():
                    self._launch(export_id)

    def _launch(self, export_id: str) -> None:
        folder = self.root / export_id
        with (folder / "export.log").open("ab") as log_file:
            process = subprocess.Popen(
                [self.python, "-m", "core.export", str(folder.resolve())], cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=log_file, start_new_session=True)
        self.running = (export_id, process)
        log.info("started export %s (pid %d)", export_id, process.pid)

    def _publish_progress(self, export_id: str) -> None:
        state = read_json(self.root / export_id / STATE_FILE, default=None)
        if not isinstance(state, dict):
            return
        seen = tuple(state.get(k) for k in PROGRESS_KEYS)
        if self.last_seen.get(export_id) == seen:
            return
        self.last_seen[export_id] = seen
        payload = {"export_id": export_id, **{k: state.get(k) for k in PROGRESS_KEYS}}
        self.publish("export_progress", payload, self.requesters.get(export_id))

    def _fail(self, export_id: str, error: str) -> None:
        path = self.root / export_id / STATE_FILE
        state = read_json(path, default={}) or {}
        write_json_atomic(path, {**state, "status": "failed", "error": error,
                                 "message": "failed", "finished_at": now_iso()})

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

