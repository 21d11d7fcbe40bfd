"""Fixtures for the security checklist: the routes' app over a temporary root (reused from
tests/routes), the same app guarded by an access token, and `served`: what `python flask_app.py
ARGS` would serve, without listening."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_app import create_app, main
from tests.routes.conftest import app, client, services  # noqa: F401  (reused fixtures)

TOKEN = "s3cret-token"


@pytest.fixture
def guarded(tmp_path: Path) -> Any:
    """An app configured with an access token, as on a non-loopback address."""
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "SYSTEM_UPDATE_SECONDS": 0, "ACCESS_TOKEN": TOKEN})
    yield app
    app.extensions["grpo_studio"].close()


def served(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> dict[str, Any]:
    """`main(argv)` with socketio.run and the system pushes stubbed out: the arguments it would
    serve with, and the app (its services closed)."""
    import routes.system
    from routes.extensions import socketio
    seen: dict[str, Any] = {}
    monkeypatch.setattr(socketio, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setattr(routes.system, "start_system_updates", lambda app, seconds: None)
    assert main(argv) == 0
    seen["app"].extensions["grpo_studio"].close()
    return seen
