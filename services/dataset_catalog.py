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

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from core.datasets import DatasetError
from core.files import read_json
from core.hub_dataset import META_SUFFIX
from services.catalog import DATASETS, catalog_dataset
from services.child_downloads import ChildDownloads, DownloadJob, DownloadNotFound, Publish
from services.model_cache import ModelAlreadyCached


class CatalogDownloadNotFound(DownloadNotFound):
    """An unknown download id (404)."""


class CatalogDatasetDownloaded(ModelAlreadyCached):
    """The split is already in the uploads folder (409)."""
    field = "id"


@dataclass(kw_only=True)
class CatalogDownload(DownloadJob):
    dataset_id: str
    name: str
    config_name: str | None
    split: str
    rows: int | None = None
    upload_id: str | None = None
    path: str | None = None
    PUBLIC: ClassVar[tuple[str, ...]] = (
        "dataset_id", "name", "config_name", "split", "rows", "upload_id", "path",
        *DownloadJob.PUBLIC)


class CatalogDownloads(ChildDownloads):
    """Starts, follows, cancels and reports downloads of catalog datasets into `uploads_dir`."""

    EVENT = "dataset_download_progress"
    KIND = "dataset download"
    NOT_FOUND = CatalogDownloadNotFound

    def __init__(self, uploads_dir: str | Path, publish: Publish, **options: Any):
        super().__init__(publish, **options)
        self.uploads_dir = Path(uploads_dir)

    # ---- downloads --------------------------------------------------------------------------
    def start(self, dataset_id: Any, socket_id: Any = None) -> dict[str, Any]:
        """Starts downloading catalog dataset `dataset_id` (or answers the running download)."""
        entry = _entry(dataset_id)
        with self._lock:
            running = self._running(lambda d: d.dataset_id == entry["id"])
            if running:
                return running.public()
            self._refuse_downloaded(entry)
            self.remove_leftovers()
            job = CatalogDownload(dataset_id=entry["id"], name=entry["name"],
                                  config_name=entry["config_name"], split=entry["split"],
                                  socket_id=socket_id if isinstance(socket_id, str) else None)
            return self._begin(job, ["core.hub_dataset", *command_args(entry, self.uploads_dir)])

    def _done_event(self, job: CatalogDownload, event: dict[str, Any]) -> None:
        job.upload_id, job.path, job.rows = event.get("id"), event.get("path"), event.get("rows")

    def _landed(self, job: CatalogDownload) -> bool:
        return job.upload_id is not None \
            and (self.uploads_dir / f"{job.upload_id}{META_SUFFIX}").is_file()

    def _done_message(self, job: CatalogDownload) -> str:
        return f"downloaded {job.rows} rows"

    def _remove_partial(self, job: CatalogDownload) -> None:
        for folder in self.uploads_dir.glob(f".hub-*.partial-{job.process.pid}"):
            shutil.rmtree(folder, ignore_errors=True)

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

    # ---- lifetime ---------------------------------------------------------------------------
    def remove_leftovers(self) -> None:
        """Partial download folders whose process is gone."""
        self._remove_dead(self.uploads_dir.glob(".hub-*"))


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
