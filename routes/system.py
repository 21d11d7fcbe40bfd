"""System API and Socket.IO handlers: machine status (also pushed as `system_update`), joining a
run's room, and the connection check."""
from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, Flask, jsonify
from flask_socketio import join_room, leave_room

from routes.common import services
from routes.extensions import socketio
from routes.security import socket_allowed
from services.runs import RunNotFound
from services.system import system_status

bp = Blueprint("system", __name__)
log = logging.getLogger("grpo_studio.system")


@bp.get("/api/system/status")
def status() -> Any:
    return jsonify(system_status())


@socketio.on("connect")
def connect(auth: Any = None) -> bool:
    return socket_allowed(auth)


@socketio.on("join_session")
def join_session(data: Any) -> dict[str, Any]:
    run_id = data.get("session_id") if isinstance(data, dict) else None
    try:
        services().runs.run(run_id or "")
    except RunNotFound:
        return {"ok": False, "error": f"no run {run_id!r}"}
    join_room(run_id)
    return {"ok": True}


@socketio.on("leave_session")
def leave_session(data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and isinstance(data.get("session_id"), str):
        leave_room(data["session_id"])
    return {"ok": True}


def start_system_updates(app: Flask, every_seconds: float) -> threading.Event:
    """Push `system_update` to every client every few seconds, in a background task, until the
    returned event is set. One failed reading is logged and skipped, never the end of the pushes."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_seconds):
            try:
                socketio.emit("system_update", system_status())
            except Exception:
                log.exception("system_update")
    socketio.start_background_task(loop)
    return stop
