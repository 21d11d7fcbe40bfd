"""What every blueprint shares: the app's services, JSON errors and request parsing helpers.

One `error_response` builds every API error body (`{"error", "field"?}`, API.md); the error
handlers registered in `register_error_handlers` answer JSON to API calls and a page to browsers,
and turn the services' exceptions into their HTTP status, so views never repeat the mapping.
Tracebacks go to the log, never into a response.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.files import PathRefused
from routes.extensions import socketio
from routes.i18n import localized_problems
from services.app import AppServices
from services.datasets import human_size
from services.errors import (BadSessionId, ConfigError, ConfigNotFound, ConfigReadOnly,
                             CustomRewardNotFound, DatasetError, ExportNotFound,
                             ExportRequestError, JobConflict, RewardError, RunNotFound,
                             TestJobNotFound, TestRequestError, TooManyTests, UploadTooLarge)
from services.errors import (CachedModelNotFound, CheckpointNotFound, CheckpointNotResumable,
                             DatasetJobNotFound, DatasetNotFound, DownloadNotFound,
                             ModelAlreadyCached, ModelIdError)

log = logging.getLogger("grpo_studio.web")


class BadRequest(ValueError):
    """A request body that is not what the endpoint takes; `field` names the part to fix."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def services() -> AppServices:
    return current_app.extensions["grpo_studio"]


def error_response(status: int, message: str, field: str | None = None, **extra: Any) -> Any:
    body = {"error": message, **({"field": field} if field else {}), **extra}
    return jsonify(body), status


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object as the request body (Content-Type: application/json)")
    return data


def requester_socket(body: dict[str, Any]) -> str | None:
    """The body's `socket_id` when it is a connected Socket.IO client, else None: tokens and
    progress go to that one client and are never broadcast (nor sent to a run's room)."""
    sid = body.get("socket_id")
    if isinstance(sid, str) and sid and socketio.server.manager.is_connected(sid, "/"):
        return sid
    return None


def int_arg(name: str, default: int, low: int = 0, high: int = 100_000) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}", field=name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", field=name)
    return value


def safe_next(target: str | None) -> str:
    """A path on this site to go back to after a redirect, else "/": never another host
    (`//host`, `/\\host`, a scheme) and nothing a browser might read as one."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ord(ch) < 32 for ch in target) or urlsplit(target).netloc:
        return "/"
    return target


# exception -> (status, field attribute) ; a message a person can act on is the exception's text
DOMAIN_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, 400), (DatasetError, 400), (RewardError, 400), (BadRequest, 400),
    (BadSessionId, 400), (ExportRequestError, 400), (ExportNotFound, 404),
    (TestRequestError, 400), (TestJobNotFound, 404),
    (ConfigNotFound, 404), (RunNotFound, 404), (CustomRewardNotFound, 404), (ConfigReadOnly, 403), (JobConflict, 409),
    (UploadTooLarge, 413), (TooManyTests, 429),
    (ModelIdError, 400), (DownloadNotFound, 404), (CachedModelNotFound, 404),
    (ModelAlreadyCached, 409), (DatasetNotFound, 404), (DatasetJobNotFound, 404),
    (CheckpointNotFound, 404), (CheckpointNotResumable, 409),
    (PathRefused, 400),
)


def register_error_handlers(app: Flask) -> None:
    for exc_type, status in DOMAIN_ERRORS:
        app.register_error_handler(exc_type, _domain_handler(status))
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)


def _domain_handler(status: int) -> Any:
    def handle(err: Exception) -> Any:
        field = getattr(err, "field", None)
        message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        extra = dict(getattr(err, "extra", None) or {})  # e.g. a custom reward's line, output
        if isinstance(err, ConfigError):
            extra["problems"] = localized_problems(err.problems)
            message = "; ".join(f"{p['field']}: {p['message']}" for p in extra["problems"])
        if wants_json():
            return error_response(status, message, field, **extra)
        return _page(status, message)
    return handle


def _too_large(err: RequestEntityTooLarge) -> Any:
    """Over the request size limit (an upload), or a form over its field limits."""
    config = current_app.config
    if request.content_length is not None and \
            request.content_length <= (config.get("MAX_CONTENT_LENGTH") or 0):
        message = (f"the form has more than {config.get('MAX_FORM_PARTS')} fields or a field "
                   f"larger than {human_size(config.get('MAX_FORM_MEMORY_SIZE') or 0)}")
        return error_response(413, message) if wants_json() else _page(413, message)
    limit = config.get("MAX_UPLOAD_BYTES") or 0
    message = f"the upload is larger than the {human_size(limit)} limit"
    return error_response(413, message, "file") if wants_json() else _page(413, message)


def _http_error(err: HTTPException) -> Any:
    message = err.description or err.name
    if wants_json():
        return error_response(err.code or 500, message)
    return _page(err.code or 500, message)


def _server_error(err: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    message = "internal error; the server log has the details"
    return error_response(500, message) if wants_json() else _page(500, message)


def _page(status: int, message: str) -> Any:
    return render_template("error.html", status=status, message=message), status
