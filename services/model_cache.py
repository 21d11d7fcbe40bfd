"""The local model cache behind the models page: download hub models, list and delete cached ones.

Guarantees: a model id is checked to be a hub id (`owner/name`, never a path) before anything runs;
each download runs in its own child process, `python -m core.hub_download OWNER/NAME`, which
writes into a hidden partial folder and renames it to `<cache>/models/<owner>--<name>/` only when
complete; its JSON-line progress is published as Socket.IO `model_download_progress` (to the
requester's socket when one was given, else to everyone). A cancelled or failed download leaves
no folder (the partial one is removed; leftovers of a killed server are removed on start and when
listing). Offline, a download fails within seconds with the child's "hub cannot be reached"
message. The listing shows the default model's folder and every model folder in the cache with its
size on disk and whether it is complete; a model is deleted by the name the listing shows,
resolved inside the cache folder only (renamed aside first, so a half-deleted model never looks
cached).

Does not: import torch or huggingface_hub (the child does), keep download history across server
restarts, or know whether a training run is reading a model that is being deleted.
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
from typing import Any, Callable

from core.default_model import DEFAULT_MODEL_NAME, DONE_MARKER, cache_root
from core.files import resolve_inside
from core.hub_download import DOWNLOAD_MARKER, folder_size
from core.models import hub_cache_dir, is_hub_id
from core.run_dir import pid_alive

REPO_ROOT = Path(__file__).resolve().parent.parent
DOWNLOAD_ID = re.compile(r"[0-9a-f]{12}")
LEFTOVER = re.compile(r"\.?(?P<name>.+)\.(?:partial|deleting)-(?P<pid>\d+)")
EVENT = "model_download_progress"
PUBLIC_FIELDS = ("download_id", "model_id", "status", "message", "downloaded_bytes", "total_bytes",
                 "file", "error", "started_at", "finished_at")
log = logging.getLogger("grpo_studio.model_cache")
Publish = Callable[[str, dict[str, Any], Any], None]


class ModelIdError(ValueError):
    field = "model_id"


class ModelAlreadyCached(ValueError):
    field = "model_id"


class DownloadNotFound(LookupError):
    pass


class CachedModelNotFound(LookupError):
    pass


@dataclass
class Download:
    download_id: str
    model_id: str
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

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        return round(self.downloaded_bytes / self.total_bytes, 4) if self.total_bytes else 0.0

    def public(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in PUBLIC_FIELDS},
                "progress": self.progress}


def models_root() -> Path:
    return cache_root() / "models"


def check_model_id(model_id: Any) -> str:
    """The hub id, stripped, or ModelIdError saying how to write one."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelIdError("enter a hub model id, for example HuggingFaceTB/SmolLM2-360M-Instruct")
    model_id = model_id.strip()
    if not is_hub_id(model_id):
        raise ModelIdError(f"{model_id!r} is not a hub model id: write owner/name with letters, "
                           f"digits, '.', '_' and '-' (not a path)")
    return model_id


class ModelCache:
    """Downloads into, lists and deletes from the model cache ($GRPO_STUDIO_CACHE/models)."""

    def __init__(self, publish: Publish, python: str = sys.executable):
        self.publish, self.python = publish, python
        self.downloads: dict[str, Download] = {}
        self._followers: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()

    # ---- downloads --------------------------------------------------------------------------
    def download(self, model_id: Any, socket_id: Any = None) -> dict[str, Any]:
        """Starts downloading `model_id` (or answers the download of it already running)."""
        model_id = check_model_id(model_id)
        with self._lock:
            running = [d for d in self.downloads.values()
                       if d.model_id == model_id and d.status == "running"]
            if running:
                return running[0].public()
            if hub_cache_dir(model_id).exists():
                raise ModelAlreadyCached(f"{model_id} is already in the model cache; delete it "
                                         f"first to download it again")
            job = Download(uuid.uuid4().hex[:12], model_id,
                           socket_id=socket_id if isinstance(socket_id, str) else None)
            job.process = self._launch(model_id)
            self.downloads[job.download_id] = job
            follower = threading.Thread(target=self._follow, args=(job,), daemon=True,
                                        name=f"model-download-{job.download_id}")
            self._followers[job.download_id] = follower
        follower.start()
        self._publish(job)
        return job.public()

    def get(self, download_id: str) -> dict[str, Any]:
        return self._job(download_id).public()

    def list_downloads(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = sorted(self.downloads.values(), key=lambda d: d.started_at, reverse=True)
        return [d.public() for d in jobs]

    def cancel(self, download_id: str, wait_s: float = 15.0) -> dict[str, Any]:
        """Stops a running download; its partial folder is removed before this returns."""
        job = self._job(download_id)
        with self._lock:
            if job.status != "running":
                return job.public()
            job.cancel_requested = True
            _kill(job.process)
        follower = self._followers.get(download_id)
        if follower is not None:
            follower.join(wait_s)
        return job.public()

    def _job(self, download_id: Any) -> Download:
        job = self.downloads.get(download_id) if isinstance(download_id, str) \
            and DOWNLOAD_ID.fullmatch(download_id) else None
        if job is None:
            raise DownloadNotFound(f"no model download {download_id!r} (downloads are "
                                   f"forgotten when the server restarts)")
        return job

    def _launch(self, model_id: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.python, "-m", "core.hub_download", model_id], cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def _follow(self, job: Download) -> None:
        """Reads the child's JSON lines until it ends, then settles the download's status."""
        with job.process.stdout as lines:
            for line in lines:
                event = _json_line(line)
                if event is None:
                    log.info("download %s: %s", job.download_id, line.rstrip())
                elif job.status == "running" and not job.cancel_requested:
                    self._apply(job, event)
                    self._publish(job)
        code = job.process.wait()
        self._settle(job, code)
        self._publish(job)

    def _apply(self, job: Download, event: dict[str, Any]) -> None:
        kind = event.get("event")
        with self._lock:
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
                job.downloaded_bytes = job.total_bytes = max(job.total_bytes,
                                                             job.downloaded_bytes)

    def _settle(self, job: Download, code: int) -> None:
        with self._lock:
            done = code == 0 and (hub_cache_dir(job.model_id) / "config.json").is_file()
            if done:
                job.status, job.message = "done", "downloaded"
            elif job.cancel_requested:
                job.status, job.message = "cancelled", "cancelled"
            else:
                job.status = "failed"
                job.error = job.error or f"the download process ended (exit status {code}) " \
                                         f"without finishing; the server log has its output"
                job.message = job.error
            job.finished_at = time.time()
        if not done:
            shutil.rmtree(_partial_folder(job), ignore_errors=True)

    def _publish(self, job: Download) -> None:
        payload = {k: v for k, v in job.public().items()
                   if k in ("download_id", "model_id", "progress", "downloaded_bytes",
                            "total_bytes", "message", "status", "error", "file")}
        try:
            self.publish(EVENT, payload, job.socket_id)
        except Exception:  # noqa: BLE001 - a lost push must not stop the download
            log.exception("could not publish %s", EVENT)

    # ---- the cache --------------------------------------------------------------------------
    def cached(self) -> list[dict[str, Any]]:
        """Every model folder in the cache, the default model's first."""
        root = models_root()
        if not root.is_dir():
            return []
        self.remove_leftovers()
        found = [describe(folder) for folder in sorted(root.iterdir())
                 if folder.is_dir() and not folder.name.startswith(".")
                 and not LEFTOVER.fullmatch(folder.name)]
        return sorted(found, key=lambda m: m["kind"] != "default")

    def delete(self, name: Any) -> None:
        """Deletes the cached model listed as `name`."""
        root = models_root()
        listed = {m["name"] for m in self.cached()}
        if not isinstance(name, str) or name not in listed:
            raise CachedModelNotFound(f"no model {name!r} in the model cache {root}")
        folder = resolve_inside(root, name)
        aside = folder.with_name(f".{folder.name}.deleting-{os.getpid()}")
        os.replace(folder, aside)
        shutil.rmtree(aside)

    def remove_leftovers(self) -> None:
        """Partial downloads and half-deleted folders whose process is gone."""
        ours = {job.process.pid for job in self.downloads.values()
                if job.status == "running" and job.process}
        root = models_root()
        for folder in root.iterdir() if root.is_dir() else ():
            match = LEFTOVER.fullmatch(folder.name)
            if match and folder.is_dir() and int(match["pid"]) not in ours \
                    and not pid_alive(int(match["pid"])):
                shutil.rmtree(folder, ignore_errors=True)

    # ---- lifetime ---------------------------------------------------------------------------
    def start(self) -> None:
        self.remove_leftovers()

    def close(self) -> None:
        """Stops running downloads (their partial folders are removed)."""
        for job in list(self.downloads.values()):
            if job.status == "running":
                self.cancel(job.download_id, wait_s=5.0)


def describe(folder: Path) -> dict[str, Any]:
    """One cached model: its folder name, the name to train it by, size and completeness."""
    record: dict[str, Any] = {}
    if folder.name == DEFAULT_MODEL_NAME:
        kind, model_id, complete = "default", "default", (folder / DONE_MARKER).is_file()
    elif is_hub_id(hub_id := folder.name.replace("--", "/", 1)) and "--" in folder.name:
        kind, model_id = "hub", hub_id
        complete = (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
        record = _read_record(folder / DOWNLOAD_MARKER)
    else:
        kind, model_id = "folder", str(folder)
        complete = (folder / "config.json").is_file()
    return {"name": folder.name, "model_id": model_id, "kind": kind, "path": str(folder),
            "size": folder_size(folder), "complete": complete,
            "downloaded_at": record.get("downloaded_at")}


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "event" in data else None


def _partial_folder(job: Download) -> Path:
    target = hub_cache_dir(job.model_id)
    return target.with_name(f".{target.name}.partial-{job.process.pid}")


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
