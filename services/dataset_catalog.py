"""Downloads of the public catalog's datasets (services/catalog.py DATASETS) into the uploads
folder, so that training reads them offline like any uploaded file.

Guarantees: only catalog entries are downloaded, by hub id, with the entry's config, split and
row cap (`download_rows`); each download runs in its own child process,
`python -m core.hub_dataset ...`, which lands `<uploads>/<id>.parquet` and its `<id>.meta.json`
(listed by services/datasets.py as an upload, with the hub id, config and split it came from)
only when complete. Its JSON-line progress is published as Socket.IO `dataset_download_progress`
to the requesting socket only (no socket id: nothing is pushed, GET the download instead). A
second request for a running download answers that download; a split already downloaded is
refused (409) until its upload is deleted. A cancelled, failed or killed download leaves nothing
(partial folders of a dead process are removed on start and when a download begins). Offline, a
download fails within seconds with the child's "hub cannot be reached" message.

Does not: import huggingface_hub, pyarrow or Flask, keep download history across restarts, or
download datasets outside the catalog (a person can upload any other file).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.datasets import DatasetError
from core.files import read_json
from core.hub_dataset import META_SUFFIX
from core.run_dir import pid_alive
from services.catalog import DATASETS, catalog_dataset
from services.model_cache import (DOWNLOAD_ID, LEFTOVER, REPO_ROOT, DownloadNotFound,
                                  ModelAlreadyCached, Publish, _json_line, _kill)

EVENT = "dataset_download_progress"
PUBLIC_FIELDS = ("download_id", "dataset_id", "name", "config_name", "split", "status", "message",
                 "downloaded_bytes", "total_bytes", "file", "rows", "upload_id", "path", "error",
                 "started_at", "finished_at")
log = logging.getLogger("grpo_studio.dataset_catalog")


class CatalogDownloadNotFound(DownloadNotFound):
    """An unknown download id (404)."""


class CatalogDatasetDownloaded(ModelAlreadyCached):
    """The split is already in the uploads folder (409)."""
    field = "id"


@dataclass
class CatalogDownload:
    download_id: str
    dataset_id: str
    name: str
    config_name: str | None
    split: str
    status: str = "running"           # running | done | failed | cancelled
    message: str = "starting"
    downloaded_bytes: int = 0
    total_bytes: int = 0
    file: str | None = None
    rows: int | None = None
    upload_id: str | None = None
    path: str | None = None
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


class CatalogDownloads:
    """Starts, follows, cancels and reports downloads of catalog datasets into `uploads_dir`."""

    def __init__(self, uploads_dir: str | Path, publish: Publish, python: str = sys.executable):
        self.uploads_dir, self.publish, self.python = Path(uploads_dir), publish, python
        self.downloads: dict[str, CatalogDownload] = {}
        self._followers: dict[str, threading.Thread] = {}
        self._lock = threading.RLock()

    # ---- downloads --------------------------------------------------------------------------
    def start(self, dataset_id: Any, socket_id: Any = None) -> dict[str, Any]:
        """Starts downloading catalog dataset `dataset_id` (or answers the running download)."""
        entry = _entry(dataset_id)
        with self._lock:
            running = [d for d in self.downloads.values()
                       if d.dataset_id == entry["id"] and d.status == "running"]
            if running:
                return running[0].public()
            self._refuse_downloaded(entry)
            self.remove_leftovers()
            job = CatalogDownload(uuid.uuid4().hex[:12], entry["id"], entry["name"],
                                  entry["config_name"], entry["split"],
                                  socket_id=socket_id if isinstance(socket_id, str) else None)
            job.process = self._launch(entry)
            self.downloads[job.download_id] = job
            follower = threading.Thread(target=self._follow, args=(job,), daemon=True,
                                        name=f"dataset-download-{job.download_id}")
            self._followers[job.download_id] = follower
        follower.start()
        self._publish(job)
        return job.public()

    def get(self, download_id: Any) -> dict[str, Any]:
        return self._job(download_id).public()

    def list_downloads(self) -> list[dict[str, Any]]:
        with self._lock:
            jobs = sorted(self.downloads.values(), key=lambda d: d.started_at, reverse=True)
        return [d.public() for d in jobs]

    def cancel(self, download_id: Any, wait_s: float = 15.0) -> dict[str, Any]:
        """Stops a running download; its partial folder is removed before this returns."""
        job = self._job(download_id)
        with self._lock:
            if job.status != "running":
                return job.public()
            job.cancel_requested = True
            _kill(job.process)
        follower = self._followers.get(job.download_id)
        if follower is not None:
            follower.join(wait_s)
        return job.public()

    def catalog(self) -> list[dict[str, Any]]:
        """The catalog entries, each with the upload it was downloaded as (or None)."""
        return [{**entry, "downloaded": self.downloaded(entry)} for entry in DATASETS]

    def downloaded(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """The upload metadata of `entry`'s split, when it has been downloaded."""
        wanted = {"id": entry["id"], "config": entry["config_name"], "split": entry["split"]}
        for meta_path in sorted(self.uploads_dir.glob(f"*{META_SUFFIX}")):
            meta = read_json(meta_path, default=None)
            hub = meta.get("hub") if isinstance(meta, dict) else None
            if isinstance(hub, dict) and {k: hub.get(k) for k in wanted} == wanted \
                    and (self.uploads_dir / str(meta.get("file"))).is_file():
                return meta
        return None

    def _refuse_downloaded(self, entry: dict[str, Any]) -> None:
        meta = self.downloaded(entry)
        if meta is not None:
            raise CatalogDatasetDownloaded(f"{entry['name']} ({entry['split']}) is already "
                                           f"downloaded as {meta['file']}; delete that upload "
                                           f"first to download it again")

    def _job(self, download_id: Any) -> CatalogDownload:
        job = self.downloads.get(download_id) if isinstance(download_id, str) \
            and DOWNLOAD_ID.fullmatch(download_id) else None
        if job is None:
            raise CatalogDownloadNotFound(f"no dataset download {download_id!r} (downloads are "
                                          f"forgotten when the server restarts)")
        return job

    def _launch(self, entry: dict[str, Any]) -> subprocess.Popen:
        return subprocess.Popen(
            [self.python, "-m", "core.hub_dataset", *command_args(entry, self.uploads_dir)],
            cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def _follow(self, job: CatalogDownload) -> None:
        """Reads the child's JSON lines until it ends, then settles the download's status."""
        with job.process.stdout as lines:
            for line in lines:
                event = _json_line(line)
                if event is None:
                    log.info("dataset download %s: %s", job.download_id, line.rstrip())
                elif job.status == "running" and not job.cancel_requested:
                    self._apply(job, event)
                    self._publish(job)
        code = job.process.wait()
        self._settle(job, code)
        self._publish(job)

    def _apply(self, job: CatalogDownload, event: dict[str, Any]) -> None:
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
                job.upload_id, job.path = event.get("id"), event.get("path")
                job.rows = event.get("rows")
                job.downloaded_bytes = job.total_bytes = max(job.total_bytes,
                                                             job.downloaded_bytes)

    def _settle(self, job: CatalogDownload, code: int) -> None:
        with self._lock:
            done = code == 0 and job.upload_id is not None \
                and (self.uploads_dir / f"{job.upload_id}{META_SUFFIX}").is_file()
            if done:
                job.status, job.message = "done", f"downloaded {job.rows} rows"
            elif job.cancel_requested:
                job.status, job.message = "cancelled", "cancelled"
            else:
                job.status = "failed"
                job.error = job.error or f"the download process ended (exit status {code}) " \
                                         f"without finishing; the server log has its output"
                job.message = job.error
            job.finished_at = time.time()
        if not done:
            for folder in self.uploads_dir.glob(f".hub-*.partial-{job.process.pid}"):
                shutil.rmtree(folder, ignore_errors=True)

    def _publish(self, job: CatalogDownload) -> None:
        if job.socket_id is None:
            return  # to the requester only; without a socket, the page polls GET
        try:
            self.publish(EVENT, job.public(), job.socket_id)
        except Exception:  # noqa: BLE001 - a lost push must not stop the download
            log.exception("could not publish %s", EVENT)

    # ---- lifetime ---------------------------------------------------------------------------
    def remove_leftovers(self) -> None:
        """Partial download folders whose process is gone."""
        ours = {job.process.pid for job in self.downloads.values()
                if job.status == "running" and job.process}
        for folder in self.uploads_dir.glob(".hub-*"):
            match = LEFTOVER.fullmatch(folder.name)
            if match and folder.is_dir() and int(match["pid"]) not in ours \
                    and not pid_alive(int(match["pid"])):
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Stops running downloads (their partial folders are removed)."""
        for job in list(self.downloads.values()):
            if job.status == "running":
                self.cancel(job.download_id, wait_s=5.0)


def command_args(entry: dict[str, Any], uploads_dir: Path) -> list[str]:
    """The arguments of `python -m core.hub_dataset` for a catalog entry."""
    args = [entry["id"], "--split", entry["split"], "--out", str(uploads_dir),
            "--name", f"{entry['name']} ({entry['split']})"]
    if entry["config_name"]:
        args += ["--config", entry["config_name"]]
    if entry.get("download_rows"):
        args += ["--max-rows", str(entry["download_rows"])]
    return args


def _entry(dataset_id: Any) -> dict[str, Any]:
    entry = catalog_dataset(dataset_id) if isinstance(dataset_id, str) else None
    if entry is None:
        known = ", ".join(d["id"] for d in DATASETS)
        raise DatasetError(f"{dataset_id!r} is not in the dataset catalog; choose one of "
                           f"{known}, or upload the file", field="id")
    return entry
