"""Models API: the catalog with memory guidance, models on this machine and trained runs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify

from core.default_model import default_model_dir
from routes.common import services
from services.catalog import DEFAULT_MODEL, FAMILIES, model_catalog

bp = Blueprint("models", __name__)


def local_model_dir(name: str) -> Path | None:
    """The folder holding `name` on this machine (the converted default model, or a local path),
    or None for a hub id that has not been downloaded."""
    if name == DEFAULT_MODEL:
        folder = default_model_dir()
        return folder if folder.is_dir() else None
    path = Path(name).expanduser()
    return path if path.is_dir() and (path / "config.json").is_file() else None


@bp.get("/api/models/list")
def listing() -> Any:
    runs = [{"session_id": r.run_id, "name": s.get("name"), "status": s.get("status"),
             "adapter": r.adapter_dir.is_dir(), "model": r.model_dir.is_dir()}
            for r in services().runs.runs() if (s := r.read_state())]
    return jsonify({"families": FAMILIES, "catalog": model_catalog(),
                    "default_ready": local_model_dir(DEFAULT_MODEL) is not None, "runs": runs})
