"""Models: the catalog with memory guidance, models on this machine and trained runs; the models
page, which downloads hub models into the local model cache and lists and deletes cached ones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, render_template

from routes.common import json_body, services
from services.catalog import DEFAULT_MODEL, FAMILIES, local_model_dir, model_catalog
from services.model_cache import models_root

bp = Blueprint("models", __name__)


@bp.get("/models")
def models_page() -> Any:
    return render_template("models.html", cache_folder=str(models_root()))


@bp.get("/api/models/list")
def listing() -> Any:
    store, exports = services().runs, services().exports.list()
    runs = [{"session_id": r.run_id, "name": s.get("name"), "status": s.get("status"),
             "adapter": r.adapter_dir.is_dir(), "model": r.model_dir.is_dir(),
             "checkpoints": [c["path"] for c in store.checkpoints(r)],
             "exports": [_export_summary(e) for e in exports
                         if Path((e.get("source") or {}).get("run_dir") or "").name == r.run_id]}
            for r in store.runs() if (s := store.state(r))]
    return jsonify({"families": FAMILIES, "catalog": model_catalog(),
                    "default_ready": local_model_dir(DEFAULT_MODEL) is not None, "runs": runs,
                    "cached": services().model_cache.cached()})


def _export_summary(export: dict[str, Any]) -> dict[str, Any]:
    return {k: export.get(k) for k in ("export_id", "format", "quantization", "status", "size",
                                       "verified")}


@bp.get("/api/models/cache")
def cache_listing() -> Any:
    cache = services().model_cache
    return jsonify({"folder": str(models_root()), "models": cache.cached(),
                    "downloads": cache.list_downloads()})


@bp.delete("/api/models/cache/<name>")
def delete_cached(name: str) -> Any:
    services().model_cache.delete(name)
    return jsonify({"deleted": name})


@bp.post("/api/models/download")
def start_download() -> Any:
    body = json_body()
    download = services().model_cache.download(body.get("model_id"), body.get("socket_id"))
    return jsonify(download), 202


@bp.get("/api/models/downloads/<download_id>")
def download_state(download_id: str) -> Any:
    return jsonify(services().model_cache.get(download_id))


@bp.delete("/api/models/downloads/<download_id>")
def cancel_download(download_id: str) -> Any:
    return jsonify(services().model_cache.cancel(download_id))
