"""The public dataset catalog's downloads: start one (progress as Socket.IO
`dataset_download_progress` to the requesting socket), follow it, cancel it; and the catalog with
what is already downloaded. Thin: parse, call services/dataset_catalog.py, answer JSON."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from routes.common import json_body, services

bp = Blueprint("dataset_catalog", __name__)


@bp.get("/api/datasets/catalog")
def catalog() -> Any:
    downloads = services().dataset_catalog
    return jsonify({"datasets": downloads.catalog(), "downloads": downloads.list_downloads()})


@bp.post("/api/datasets/catalog/download")
def start_download() -> Any:
    body = json_body()
    return jsonify(services().dataset_catalog.start(body.get("id"), body.get("socket_id"))), 202


@bp.get("/api/datasets/catalog/downloads/<catalog_download_id>")
def download_state(catalog_download_id: str) -> Any:
    return jsonify(services().dataset_catalog.get(catalog_download_id))


@bp.delete("/api/datasets/catalog/downloads/<catalog_download_id>")
def cancel_download(catalog_download_id: str) -> Any:
    return jsonify(services().dataset_catalog.cancel(catalog_download_id))
