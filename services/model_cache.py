"""The local model cache behind the models page: download hub models, list and delete cached ones.

Guarantees: a model id is checked to be a hub id (`owner/name`, never a path) before anything runs;
each download runs in its own child process, `python -m core.hub_download OWNER/NAME`, which
writes into a hidden partial folder and renames it to `<cache>/models/<owner>--<name>/` only when
complete; its JSON-line progress is published as Socket.IO `model_download_progress` to the
requester's socket (services/child_downloads.py follows the child). A cancelled or failed download leaves
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
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from core.default_model import DEFAULT_MODEL_NAME, DONE_MARKER, cache_root
from core.files import resolve_inside
from core.hub_download import DOWNLOAD_MARKER, folder_size
from core.models import hub_cache_dir, is_hub_id
from services.child_downloads import LEFTOVER, ChildDownloads, DownloadJob, DownloadNotFound

__all__ = ["CachedModelNotFound", "DownloadNotFound", "ModelAlreadyCached", "ModelCache",
           "ModelIdError", "check_model_id", "models_root"]


class ModelIdError(ValueError):
    field = "model_id"


class ModelAlreadyCached(ValueError):
    field = "model_id"


class CachedModelNotFound(LookupError):
    pass


@dataclass(kw_only=True)
class Download(DownloadJob):
    model_id: str
    PUBLIC: ClassVar[tuple[str, ...]] = ("model_id", *DownloadJob.PUBLIC)


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


class ModelCache(ChildDownloads):
    """Downloads into, lists and deletes from the model cache ($GRPO_STUDIO_CACHE/models)."""

    EVENT = "model_download_progress"
    KIND = "model download"

    # ---- downloads --------------------------------------------------------------------------
    def download(self, model_id: Any, socket_id: Any = None) -> dict[str, Any]:
        """Starts downloading `model_id` (or answers the download of it already running)."""
        model_id = check_model_id(model_id)
        with self._lock:
            running = self._running(lambda d: d.model_id == model_id)
            if running:
                return running.public()
            if hub_cache_dir(model_id).exists():
                raise ModelAlreadyCached(f"{model_id} is already in the model cache; delete it "
                                         f"first to download it again")
            job = Download(model_id=model_id,
                           socket_id=socket_id if isinstance(socket_id, str) else None)
            return self._begin(job, ["core.hub_download", model_id])

    def _landed(self, job: Download) -> bool:
        return (hub_cache_dir(job.model_id) / "config.json").is_file()

    def _remove_partial(self, job: Download) -> None:
        target = hub_cache_dir(job.model_id)
        shutil.rmtree(target.with_name(f".{target.name}.partial-{job.process.pid}"),
                      ignore_errors=True)

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
        root = models_root()
        self._remove_dead(root.iterdir() if root.is_dir() else ())

    # ---- lifetime ---------------------------------------------------------------------------
    def start(self) -> None:
        self.remove_leftovers()


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
