"""Downloads that run in child processes reporting JSON lines (`core.hub_download` for models,
`core.hub_dataset` for catalog datasets): starting, following, cancelling and reporting them.

Guarantees: each download is one child process in its own session, followed by a thread that
applies its `status`, `plan`, `progress`, `error` and `done` lines to the download's state and
publishes each change to the requesting socket only (never broadcast; without a socket id the
page polls). When the child ends, the download is `done` only if the subclass finds its result
in place, else `cancelled` (after `cancel`) or `failed` with the child's error or its exit
status, and the subclass removes what it left. Ids are 12 hex digits; an unknown id raises the
subclass's not-found error.

Does not: know what is downloaded or where it lands (subclasses do), or keep downloads across a
server restart.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

from core.run_dir import pid_alive

REPO_ROOT = Path(__file__).resolve().parent.parent
DOWNLOAD_ID = re.compile(r"[0-9a-f]{12}")
LEFTOVER = re.compile(r"\.?(?P<name>.+)\.(?:partial|deleting)-(?P<pid>\d+)")
Publish = Callable[[str, dict[str, Any], Any], None]
log = logging.getLogger("grpo_studio.downloads")


class DownloadNotFound(LookupError):
    pass


@dataclass(kw_only=True)
class DownloadJob:
    download_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = "running"           # running | done | failed | cancelled
    message: str = "starting"
    downloaded_bytes: int = 0
    total_bytes: int = 0
    file: str | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    process: Any = field(default=None, repr=False)
    socket_id: str | None = field(default=None, repr=False)
    cancel_requested: bool = field(default=False, repr=False)
    PUBLIC: ClassVar[tuple[str, ...]] = (
        "download_id", "status", "message", "downloaded_bytes", "total_bytes", "file", "error",
        "started_at", "finished_at")

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return round(self.downloaded_bytes / self.total_bytes, 4) if self.total_bytes else 0.0

    def public(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in self.PUBLIC}, "progress": self.progress}


class ChildDownloads:
    """The downloads of one kind; subclasses name the event, the child and what `done` means."""

    EVENT = ""            # the Socket.IO event of progress
    KIND = "download"     # in messages: "no model download 'x'"
    NOT_FOUND: type[LookupError] = DownloadNotFound

    def __init__(self, publish: Publish, python: str = sys.executable):
        self.publish, self.python = publish, python
        self.downloads: dict[str, Any] = {}
        self._followers: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()

    # ---- starting, reading, cancelling ------------------------------------------------------
    def _begin(self, job: DownloadJob, child_args: list[str]) -> dict[str, Any]:
        """Starts `python -m <child_args>` for `job` (called with the lock held) and follows it."""
        job.process = subprocess.Popen(
            [self.python, "-m", *child_args], cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.downloads[job.download_id] = job
        follower = threading.Thread(target=self._follow, args=(job,), daemon=True,
                                    name=f"{self.KIND.replace(' ', '-')}-{job.download_id}")
        self._followers[job.download_id] = follower
        follower.start()
        self._publish(job)
        return job.public()

    def _running(self, matches: Callable[[Any], bool]) -> Any | None:
        return next((d for d in self.downloads.values()
                     if d.status == "running" and matches(d)), None)

    def get(self, download_id: Any) -> dict[str, Any]:
        return self._job(download_id).public()

    def list_downloads(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = sorted(self.downloads.values(), key=lambda d: d.started_at, reverse=True)
        return [d.public() for d in jobs]

    def cancel(self, download_id: Any, wait_s: float = 15.0) -> dict[str, Any]:
        """Stops a running download; what it left is removed before this returns."""
        job = self._job(download_id)
        with self._lock:
            if job.status != "running":
                return job.public()
            job.cancel_requested = True
            kill(job.process)
        follower = self._followers.get(job.download_id)
        if follower is not None:
            follower.join(wait_s)
        return job.public()

    def close(self) -> None:
        """Stops running downloads (what they left is removed)."""
        for job in list(self.downloads.values()):
            if job.status == "running":
                self.cancel(job.download_id, wait_s=5.0)

    def _job(self, download_id: Any) -> Any:
        job = self.downloads.get(download_id) if isinstance(download_id, str) \
            and DOWNLOAD_ID.fullmatch(download_id) else None
        if job is None:
            raise self.NOT_FOUND(f"no {self.KIND} {download_id!r} (downloads are forgotten "
                                 f"when the server restarts)")
        return job

    def _remove_dead(self, folders: Iterable[Path]) -> None:
        """The `<name>.partial-<pid>` / `.deleting-<pid>` folders among `folders` whose process
        has ended (a killed server's, a crashed child's)."""
        ours = {job.process.pid for job in self.downloads.values()
                if job.status == "running" and job.process}
        for folder in folders:
            match = LEFTOVER.fullmatch(folder.name)
            if match and folder.is_dir() and int(match["pid"]) not in ours \
                    and not pid_alive(int(match["pid"])):
                shutil.rmtree(folder, ignore_errors=True)

    # ---- following the child ----------------------------------------------------------------
    def _follow(self, job: DownloadJob) -> None:
        """Reads the child's JSON lines until it ends, then settles the download's status."""
        with job.process.stdout as lines:
            for line in lines:
                event = json_line(line)
                if event is None:
                    log.info("%s %s: %s", self.KIND, job.download_id, line.rstrip())
                elif job.status == "running" and not job.cancel_requested:
                    with self._lock:
                        self._apply(job, event)
                    self._publish(job)
        code = job.process.wait()
        self._settle(job, code)
        self._publish(job)

    def _apply(self, job: Any, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "status":
            job.message = str(event.get("message") or "")
        elif kind == "plan":
            job.total_bytes = int(event.get("total_bytes") or 0)
            job.message = f"{len(event.get('files') or [])} files to download"
        elif kind == "progress":
            job.downloaded_bytes = int(event.get("downloaded_bytes") or 0)
            job.total_bytes = int(event.get("total_bytes") or job.total_bytes)
            job.file = event.get("file")
            job.message = f"downloading {job.file}" if job.file else "downloading"
        elif kind == "error":
            job.error = str(event.get("message") or "the download failed")
        elif kind == "done":
            job.downloaded_bytes = job.total_bytes = max(job.total_bytes, job.downloaded_bytes)
            self._done_event(job, event)

    def _settle(self, job: Any, code: int) -> None:
        with self._lock:
            done = code == 0 and self._landed(job)
            if done:
                job.status, job.message = "done", self._done_message(job)
            elif job.cancel_requested:
                job.status, job.message = "cancelled", "cancelled"
            else:
                job.status = "failed"
                job.error = job.error or f"the download process ended (exit status {code}) " \
                                         f"without finishing; the server log has its output"
                job.message = job.error
            job.finished_at = time.time()
        if not done:
            self._remove_partial(job)

    def _publish(self, job: DownloadJob) -> None:
        if job.socket_id is None:
            return  # to the requester only; without a socket, the page polls GET
        try:
            self.publish(self.EVENT, job.public(), job.socket_id)
        except Exception:  # noqa: BLE001 - a lost push must not stop the download
            log.exception("could not publish %s", self.EVENT)

    # ---- what subclasses say ----------------------------------------------------------------
    def _done_event(self, job: Any, event: dict[str, Any]) -> None:
        """The child's `done` line (its result's details)."""

    def _landed(self, job: Any) -> bool:
        raise NotImplementedError

    def _done_message(self, job: Any) -> str:
        return "downloaded"

    def _remove_partial(self, job: Any) -> None:
        raise NotImplementedError


def json_line(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "event" in data else None


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
