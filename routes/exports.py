"""Exports API: create an export of a run or checkpoint, list them, download a file, delete one.
Files are addressed by export id and a name the export lists, never by a path from the client."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, send_file

from routes.common import json_body, services

bp = Blueprint("exports", __name__)


@bp.get("/export")
def export_page() -> Any:
    return render_template("export.html")


@bp.post("/api/exports/create")
def create() -> Any:
    return jsonify(services().exports.create(json_body())), 202


@bp.get("/api/exports/list")
def listing() -> Any:
    return jsonify({"exports": services().exports.list()})


@bp.get("/api/exports/<export_id>")
def details(export_id: str) -> Any:
    return jsonify(services().exports.get(export_id))


@bp.get("/api/exports/<export_id>/files/<name>")
def download(export_id: str, name: str) -> Any:
    return send_file(services().exports.file_path(export_id, name), as_attachment=True,
                     download_name=name)


@bp.delete("/api/exports/<export_id>")
def delete(export_id: str) -> Any:
    services().exports.delete(export_id)
    return jsonify({"deleted": export_id})
