"""Models API: the catalog with memory guidance, models on this machine and trained runs."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template

from routes.common import services
from services.catalog import DEFAULT_MODEL, FAMILIES, local_model_dir, model_catalog

bp = Blueprint("models", __name__)


@bp.get("/models")
def models_page() -> Any:
    return render_template("models.html")


@bp.get("/api/models/list")
def listing() -> Any:
    store = services().runs
    runs = [{"session_id": r.run_id, "name": s.get("name"), "status": s.get("status"),
             "adapter": r.adapter_dir.is_dir(), "model": r.model_dir.is_dir()}
            for r in store.runs() if (s := store.state(r))]
    return jsonify({"families": FAMILIES, "catalog": model_catalog(),
                    "default_ready": local_model_dir(DEFAULT_MODEL) is not None, "runs": runs})
