"""Datasets API used by the wizard: list, upload, preview rows, and one formatted prompt."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from core.config import DatasetSection, TemplateSection, validate_section
from routes.common import BadRequest, json_body, services
from services.catalog import local_model_dir

bp = Blueprint("datasets", __name__)


@bp.get("/api/datasets/list")
def listing() -> Any:
    return jsonify({"datasets": services().datasets.list()})


@bp.post("/api/datasets/upload")
def upload() -> Any:
    file = request.files.get("file")
    if file is None or not file.filename:
        raise BadRequest("send the dataset as multipart form field 'file'", field="file")
    return jsonify(services().datasets.save_upload(file.stream, file.filename)), 201


@bp.post("/api/datasets/preview")
def preview() -> Any:
    body = json_body()
    samples = body.get("samples", 5)
    if not isinstance(samples, int) or not 1 <= samples <= 100:
        raise BadRequest("samples must be a whole number from 1 to 100", field="samples")
    library = services().datasets
    return jsonify(library.preview(library.section_for(body), samples))


@bp.post("/api/datasets/format")
def formatted() -> Any:
    """The first row formatted as training will see it (system prompt, markers, chat template)."""
    config = json_body().get("config") or {}
    if not isinstance(config, dict):
        raise BadRequest("config must be an object", field="config")
    section = validate_section(DatasetSection, config.get("dataset"), "dataset")
    template = validate_section(TemplateSection, config.get("template"), "template")
    model_dir = local_model_dir(str((config.get("model") or {}).get("name", "default")))
    return jsonify(services().datasets.formatted_example(section, template, model_dir))
