"""Datasets API used by the wizard and the datasets page: list, upload, rename, delete, download,
preview rows, one formatted prompt, and the tools (validate, statistics and dedup jobs, split,
convert). API.md lists the contract; the README documents the rest."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, send_file

from core.config import DatasetSection, TemplateSection, validate_section
from core.datasets import DatasetError
from routes.common import BadRequest, error_response, json_body, requester_socket, services
from services.catalog import local_model_dir
from services.dataset_tools import txt_mode_of

bp = Blueprint("datasets", __name__)


@bp.errorhandler(DatasetError)
def named_by_label(err: DatasetError) -> Any:
    """A dataset error names an upload by its label, never by its stored file name."""
    return error_response(400, services().datasets.with_labels(str(err)), err.field)


@bp.get("/datasets")
def datasets_page() -> Any:
    """Upload, inspect, clean, split and convert datasets, then use one in the wizard."""
    return render_template("datasets.html", max_upload=current_app.config["MAX_UPLOAD_BYTES"])


@bp.get("/api/datasets/list")
def listing() -> Any:
    return jsonify({"datasets": services().datasets.list()})


@bp.post("/api/datasets/upload")
def upload() -> Any:
    file = request.files.get("file")
    if file is None or not file.filename:
        raise BadRequest("send the dataset as multipart form field 'file'", field="file")
    return jsonify(services().datasets.save_upload(file.stream, file.filename)), 201


@bp.patch("/api/datasets/<upload_id>")
def rename(upload_id: str) -> Any:
    return jsonify(services().datasets.rename(upload_id, json_body().get("name")))


@bp.delete("/api/datasets/<upload_id>")
def delete(upload_id: str) -> Any:
    return jsonify({"deleted": services().datasets.delete(upload_id)})


@bp.get("/api/datasets/<upload_id>/download")
def download(upload_id: str) -> Any:
    path, name = services().datasets.download(upload_id)
    return send_file(path, as_attachment=True, download_name=name)


@bp.post("/api/datasets/preview")
def preview() -> Any:
    body = json_body()
    samples, offset = body.get("samples", 5), body.get("offset", 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 100:
        raise BadRequest("samples must be a whole number from 1 to 100", field="samples")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 10**9:
        raise BadRequest("offset must be a whole number of rows from 0 to 10^9", field="offset")
    library = services().datasets
    return jsonify(library.preview(library.section_for(body), samples, offset,
                                   txt_mode_of(body)))


@bp.post("/api/datasets/validate")
def validate() -> Any:
    return jsonify(services().dataset_tools.validate(json_body()))


@bp.post("/api/datasets/stats")
def stats() -> Any:
    return jsonify({"job_id": services().dataset_jobs.start_stats(_with_socket())}), 202


@bp.post("/api/datasets/dedup")
def dedup() -> Any:
    return jsonify({"job_id": services().dataset_jobs.start_dedup(_with_socket())}), 202


@bp.get("/api/datasets/jobs/<dataset_job_id>")
def job(dataset_job_id: str) -> Any:
    return jsonify(services().dataset_jobs.get(dataset_job_id))


@bp.post("/api/datasets/dedup/<dataset_job_id>/write")
def write_dedup(dataset_job_id: str) -> Any:
    body = request.get_json(silent=True) or {}   # every key is optional
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object as the request body", field="name")
    return jsonify(services().dataset_jobs.write_dedup(dataset_job_id, body)), 201


@bp.post("/api/datasets/split")
def split() -> Any:
    return jsonify(services().dataset_tools.split(json_body())), 201


@bp.post("/api/datasets/convert")
def convert() -> Any:
    return jsonify(services().dataset_tools.convert(json_body())), 201


def _with_socket() -> dict[str, Any]:
    """The JSON body with `socket_id` kept only when it names a connected client."""
    body = json_body()
    return {**body, "socket_id": requester_socket(body)}


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
