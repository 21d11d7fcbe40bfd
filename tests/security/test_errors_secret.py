"""The secret key and errors: a per-install secret key, created with mode 0600 and used by the app;
an internal error answers a plain message (JSON to the API, a page to a browser) with no
traceback, exception text or file path, and the log has the traceback."""
from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from flask_app import create_app, secret_key
from tests.security.conftest import served

LEAK = "boom in /very/secret/path/module.py"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- the secret key ------------------------------------------------------------------------------
def test_the_secret_key_is_created_with_mode_0600(tmp_path):
    secret_key(tmp_path)
    assert mode_of(tmp_path / ".secret_key") == 0o600


def test_the_app_signs_with_the_installs_secret_key(app, tmp_path):
    assert app.config["SECRET_KEY"] == (tmp_path / ".secret_key").read_text().strip()


def test_the_secret_key_is_kept_across_starts(tmp_path):
    assert secret_key(tmp_path) == secret_key(tmp_path) and len(secret_key(tmp_path)) >= 32


def test_each_install_gets_its_own_secret_key(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert secret_key(tmp_path / "a") != secret_key(tmp_path / "b")


def test_a_secret_key_readable_by_others_is_narrowed_to_0600(tmp_path):
    path = tmp_path / ".secret_key"
    path.write_text("old-key")
    path.chmod(0o644)
    assert secret_key(tmp_path) == "old-key" and mode_of(path) == 0o600


# ---- errors --------------------------------------------------------------------------------------
@pytest.fixture
def broken(services, monkeypatch):
    """The run store fails as a bug would, with a message naming a file."""
    def fail(*args, **kwargs):
        raise RuntimeError(LEAK)
    monkeypatch.setattr(services.runs, "runs", fail)


def assert_no_leak(text: str) -> None:
    assert "Traceback" not in text and "boom" not in text and ".py" not in text
    assert "/very/secret" not in text and "RuntimeError" not in text


def test_an_internal_error_answers_json_without_a_traceback(client, broken):
    response = client.get("/api/training/sessions")
    assert response.status_code == 500 and response.json == {
        "error": "internal error; the server log has the details"}
    assert_no_leak(response.get_data(as_text=True))


def test_an_internal_error_on_a_page_shows_no_traceback(client, broken):
    response = client.get("/export")
    assert response.status_code == 500 and "text/html" in response.content_type
    assert_no_leak(response.get_data(as_text=True))


def test_the_log_has_the_traceback_of_an_internal_error(client, broken, caplog):
    with caplog.at_level(logging.ERROR, logger="grpo_studio.web"):
        client.get("/api/training/sessions")
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "GET /api/training/sessions" in logged and "Traceback" in logged and LEAK in logged


def test_the_app_is_not_in_debug_mode(tmp_path):
    app = create_app({"ROOT": tmp_path, "START_JOBS": False})
    try:
        assert not app.debug and not app.config["PROPAGATE_EXCEPTIONS"]
    finally:
        app.extensions["grpo_studio"].close()


def test_the_server_runs_without_the_debugger(monkeypatch, tmp_path):
    seen = served(monkeypatch, ["--root", str(tmp_path)])
    assert not seen.get("debug") and not seen["app"].debug
