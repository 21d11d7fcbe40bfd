"""Datasets API used by the wizard: list, upload, preview rows, and one formatted prompt."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from core.config import DatasetSection, TemplateSection
from routes.common import BadRequest, json_body, services
from routes.models import local_model_dir

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
    section = _section(body)
    samples = body.get("samples", 5)
    if not isinstance(samples, int) or not 1 <= samples <= 100:
        raise BadRequest("samples must be a whole number from 1 to 100", field="samples")
    return jsonify(services().datasets.preview(section, samples))


@bp.post("/api/datasets/format")
def formatted() -> Any:
    """The first row formatted as training will see it (system prompt, markers, chat template)."""
    config = json_body().get("config") or {}
    section = DatasetSection.model_validate(config.get("dataset") or {})
    template = TemplateSection.model_validate(config.get("template") or {})
    model_dir = local_model_dir((config.get("model") or {}).get("name", "default"))
    return jsonify(services().datasets.formatted_example(section, template, model_dir))


def _section(body: dict[str, Any]) -> DatasetSection:
    """A dataset section from `{"source", "path"}` or `{"id"}` (an upload or a bundled sample)."""
    if "id" in body and "path" not in body:
        found = [d for d in services().datasets.list() if d["id"] == body["id"]]
        if not found:
            raise BadRequest(f"no dataset with id {body['id']!r}", field="id")
        entry = found[0]
        body = {**body, "source": entry["source"], "path": entry.get("path", entry["id"]),
                "config": entry.get("config_name"), "split": entry.get("split", "train")}
    return DatasetSection.model_validate({
        "source": body.get("source", "file"), "path": body.get("path") or "",
        "config_name": body.get("config") or body.get("config_name"),
        "split": body.get("split") or "train", "mapping": body.get("mapping") or {}})


