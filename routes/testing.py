"""Testing page and API: chat with a model (tokens streamed as `generation_token` to the requesting
socket), batch tests scored by rewards, and held-out evaluation of base vs fine-tuned.
API.md lists the contract; the README documents the rest."""
from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from routes.common import BadRequest, error_response, json_body, requester_socket, services
from routes.extensions import socketio
from services.inference import InferenceError, InferenceTimeout
from services.testing import read_prompt_file

bp = Blueprint("testing", __name__)


@bp.errorhandler(InferenceError)
def inference_failed(err: InferenceError) -> Any:
    """A request the worker refused names its field (400); a worker that timed out (504) or
    died (503) is the server's problem, with the reason."""
    status = 400 if err.field else 504 if isinstance(err, InferenceTimeout) else 503
    return error_response(status, str(err), err.field)


@bp.get("/test")
def test_page() -> Any:
    return render_template("test.html")


@bp.get("/api/test/models")
def models() -> Any:
    cached = [m["model_id"] for m in services().model_cache.cached() if m["complete"]]
    return jsonify({"models": services().tester.selector.choices(cached)})


@bp.post("/api/models/test")
def generate() -> Any:
    body = json_body()
    stream_id = body.get("stream_id")
    if stream_id is not None and (not isinstance(stream_id, str) or not 0 < len(stream_id) <= 100):
        raise BadRequest("stream_id must be a short string", "stream_id")
    socket_id = requester_socket(body)
    request_id = stream_id or uuid.uuid4().hex

    def stream(piece: str) -> None:
        if stream_id and socket_id:
            socketio.emit("generation_token", {"stream_id": stream_id, "token": piece},
                          to=socket_id)

    return jsonify(services().tester.generate(body, request_id, stream))


@bp.post("/api/models/test/cancel")
def cancel() -> Any:
    stream_id = json_body().get("stream_id")
    if not isinstance(stream_id, str) or not stream_id:
        raise BadRequest("name the stream to stop (stream_id)", "stream_id")
    services().tester.cancel(stream_id)
    return jsonify({"cancelled": stream_id})


@bp.post("/api/test/prompts")
def prompts() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadRequest("upload a prompt file (.txt, .jsonl or .csv) as the field 'file'", "file")
    found = read_prompt_file(upload.stream, upload.filename)
    return jsonify({"prompts": found, "count": len(found), "file": upload.filename})


@bp.post("/api/test/batch")
def batch() -> Any:
    body = json_body()
    body["socket_id"] = requester_socket(body)
    return jsonify({"job_id": services().test_jobs.start_batch(body)}), 202


@bp.post("/api/test/eval")
def evaluate() -> Any:
    body = json_body()
    body["socket_id"] = requester_socket(body)
    return jsonify({"job_id": services().test_jobs.start_eval(body)}), 202


@bp.get("/api/test/jobs")
def jobs() -> Any:
    return jsonify({"jobs": services().test_jobs.list()})


@bp.get("/api/test/jobs/<job_id>")
def job(job_id: str) -> Any:
    return jsonify(services().test_jobs.get(job_id))


@bp.get("/api/test/jobs/<job_id>/download")
def download(job_id: str) -> Any:
    content, name, mimetype = services().test_jobs.download(job_id,
                                                            request.args.get("format", "csv"))
    return Response(content, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.delete("/api/test/jobs/<job_id>")
def delete(job_id: str) -> Any:
    return jsonify({job_id: services().test_jobs.cancel_or_delete(job_id)})
