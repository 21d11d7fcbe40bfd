"""The baseline request checks: the access token (when the server listens beyond loopback) and
refusing state-changing requests from another origin.

Guarantees: with an access token configured, every request but the static files and the login
page needs it, as the `X-Access-Token` header, `Authorization: Bearer`, or the HttpOnly
SameSite=Strict cookie obtained once from `/login?token=` (compared in constant time); the Socket.IO
handshake needs it too. A POST/PUT/PATCH/DELETE whose `Origin` is not this server, or that the
browser marks `Sec-Fetch-Site: cross-site`, is refused with 403. Socket.IO keeps its same-origin
default (no `cors_allowed_origins="*"`).

Without a token (loopback), the `Host` header must name this machine (localhost, 127.0.0.1, [::1]),
so a page on another domain that re-resolves its name to 127.0.0.1 (DNS rebinding) is refused,
requests and Socket.IO handshake alike. With a token, the token is the boundary. A Socket.IO
handshake from another origin is refused like a state-changing request.

No request turns on `trust_remote_code`: a state-changing JSON body that sets it anywhere is refused
(400, naming the field) unless the server was started with `--trust-remote-code`. Static files
whose path has a hidden (dot) part are never served (404).

Does not: check what a view does with ids and paths (core.files.resolve_inside and the services
do), or limit request sizes (flask_app.py sets Flask's limits).
"""
from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for

from core.files import PathRefused, resolve_inside
from routes.common import error_response, safe_next, wants_json

COOKIE = "grpo_studio_token"
OPEN_ENDPOINTS = ("static", "security.login")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
REMOTE_CODE_KEY = "trust_remote_code"
MAX_DEPTH = 16

bp = Blueprint("security", __name__)


def token_matches(given: str | None) -> bool:
    expected = current_app.config.get("ACCESS_TOKEN")
    return bool(expected) and bool(given) and hmac.compare_digest(given.encode(),
                                                                  expected.encode())


def request_token() -> str | None:
    auth = request.headers.get("Authorization", "")
    return (request.headers.get("X-Access-Token")
            or (auth[7:] if auth.startswith("Bearer ") else None)
            or request.cookies.get(COOKIE))


def known_host() -> bool:
    """With a token anything may be the host name; without one only this machine's names."""
    if current_app.config.get("ACCESS_TOKEN"):
        return True
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host.lower() in LOOPBACK_HOSTS


def check_request() -> Any:
    if not known_host():
        return error_response(403, "refused: unknown Host header (open the app at "
                                   "http://localhost or http://127.0.0.1)")
    if request.method in UNSAFE_METHODS and foreign_origin():
        return error_response(403, "refused: the request comes from another site")
    if current_app.config.get("ACCESS_TOKEN") and request.endpoint not in OPEN_ENDPOINTS \
            and not token_matches(request_token()):
        return refuse_without_token()
    if request.endpoint == "static" and hidden_static_file():
        return error_response(404, "no such file")
    field = remote_code_field() if request.method in UNSAFE_METHODS else None
    if field and not current_app.config.get("TRUST_REMOTE_CODE"):
        return error_response(400, "this server does not run code shipped with a model; restart "
                                   "it with --trust-remote-code if you trust that code", field)
    return None


def refuse_without_token() -> Any:
    if wants_json():
        return error_response(401, "this server needs its access token (printed at start)")
    return redirect(url_for("security.login", next=request.full_path.rstrip("?")))


def hidden_static_file() -> bool:
    try:
        resolve_inside(current_app.static_folder, (request.view_args or {}).get("filename", ""))
    except PathRefused:
        return True
    return False


def remote_code_field() -> str | None:
    """The dotted path of a true `trust_remote_code` anywhere in the JSON body, or None."""
    body = request.get_json(silent=True) if request.is_json else None
    return _true_key(body, REMOTE_CODE_KEY, "")


def _true_key(value: Any, key: str, path: str, depth: int = 0) -> str | None:
    """Configs are shallow; deeper than MAX_DEPTH the loaders' own gate (core.models) decides."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for name, child in children:
        where = f"{path}.{name}" if path else str(name)
        if name == key and child not in (False, None):
            return where
        found = _true_key(child, key, where, depth + 1)
        if found:
            return found
    return None


def foreign_origin() -> bool:
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if not origin:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.host


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    token = request.values.get("token")
    target = safe_next(request.values.get("next"))
    if token is not None and token_matches(token):
        response = redirect(target)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response
    status = 401 if token is not None else 200
    return render_template("login.html", failed=token is not None, next=target), status


def socket_allowed(auth: Any) -> bool:
    """The Socket.IO handshake: same origin only; allowed without a token configured, else with
    the token."""
    if foreign_origin():
        return False
    if not current_app.config.get("ACCESS_TOKEN"):
        return known_host()
    given = auth.get("token") if isinstance(auth, dict) else None
    return token_matches(given or request_token())


def init_security(app: Flask) -> None:
    app.before_request(check_request)
    app.register_blueprint(bp)
