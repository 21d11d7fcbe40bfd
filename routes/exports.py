"""The export page, and the exports API: create an export of a run or checkpoint, list them,
download a file, delete one.
Files are addressed by export id and a name the export lists, never by a path from the client."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request, send_file

from core.export.request import DEFAULT_QUANTIZATION, FORMATS, QUANTIZATIONS
from routes.common import json_body, services

bp = Blueprint("exports", __name__)


@bp.get("/export")
def export_page() -> Any:
    """The export page; `?run=<run_id>&checkpoint=<name>` preselects a source."""
    return render_template("export.html", formats=FORMATS, page_data={
        "sources": _export_sources(),
        "quantizations": QUANTIZATIONS, "default_quantization": DEFAULT_QUANTIZATION,
        "selected": {"run": request.args.get("run", "")[:128],
                     "checkpoint": request.args.get("checkpoint", "")[:128]}})


def _export_sources() -> list[dict[str, Any]]:
    """Runs that have something to export (a final result or a complete checkpoint), newest
    first, as the create request checks them."""
    runs = services().runs
    found = []
    for run in runs.runs():
        state = runs.state(run)
        has_result = run.adapter_dir.is_dir() or run.model_dir.is_dir()
        checkpoints = _checkpoint_choices(runs.checkpoints(run))
        if has_result or checkpoints:
            found.append({"run_id": run.run_id, "name": state.get("name") or run.run_id,
                          "status": state.get("status"), "has_result": has_result,
                          "checkpoints": checkpoints})
    return found


def _checkpoint_choices(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One choice per checkpoint name, newest first. An export names a checkpoint by name and
    resolves it in the main phase first, so a pre-training checkpoint whose name the main phase
    also uses cannot be chosen (it would not be the one exported)."""
    by_name: dict[str, dict[str, Any]] = {}
    for c in checkpoints:
        if c["name"] not in by_name or by_name[c["name"]]["phase"] == "pre_training":
            by_name[c["name"]] = {k: c.get(k) for k in ("name", "phase", "step")}
    return sorted(by_name.values(), key=lambda c: (c["phase"] != "pre_training", c["step"]),
                  reverse=True)


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
