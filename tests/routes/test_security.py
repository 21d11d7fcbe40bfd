"""Baseline safety: the access token on a non-loopback server, and refusing state-changing
requests from another origin."""
from __future__ import annotations

from pathlib import Path

import pytest

from flask_app import create_app, main
from routes.extensions import socketio
from routes.security import COOKIE


@pytest.fixture
def guarded(tmp_path: Path):
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "ACCESS_TOKEN": "s3cret-token"})
    yield app
    app.extensions["grpo_studio"].jobs.close()


def test_without_the_token_api_answers_401_and_pages_go_to_login(guarded):
    client = guarded.test_client()
    api = client.get("/api/training/sessions")
    assert api.status_code == 401 and "access token" in api.json["error"]
    page = client.get("/runs")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    with client.get("/static/css/app.css") as static:               # static files stay open
        assert static.status_code == 200


@pytest.mark.parametrize("headers", [
    {"X-Access-Token": "s3cret-token"},
    {"Authorization": "Bearer s3cret-token"},
])
def test_the_token_is_accepted_as_a_header(guarded, headers):
    assert guarded.test_client().get("/api/training/sessions", headers=headers).status_code == 200


def test_the_token_is_exchanged_once_for_a_strict_httponly_cookie(guarded):
    client = guarded.test_client()
    wrong = client.get("/login?token=nope")
    assert wrong.status_code == 401
    login = client.get("/login?token=s3cret-token&next=/runs")
    assert login.status_code == 302 and login.headers["Location"] == "/runs"
    cookie = login.headers["Set-Cookie"]
    assert COOKIE in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/training/sessions").status_code == 200


def test_login_never_redirects_off_site(guarded):
    login = guarded.test_client().get("/login?token=s3cret-token&next=//evil.example/x")
    assert login.headers["Location"] == "/"


def test_the_socket_handshake_needs_the_token(guarded):
    refused = socketio.test_client(guarded)
    assert not refused.is_connected()
    allowed = socketio.test_client(guarded, auth={"token": "s3cret-token"})
    assert allowed.is_connected()
    allowed.disconnect()


@pytest.mark.parametrize("headers, status", [
    ({"Origin": "http://evil.example"}, 403),                 # another site
    ({"Origin": "null"}, 403),                                # a sandboxed frame or file://
    ({"Sec-Fetch-Site": "cross-site"}, 403),                  # the browser says so
    ({"Origin": "http://localhost"}, 400),                    # same origin: reaches the view
    ({}, 400),                                                # scripts send no Origin
])
def test_state_changing_requests_from_another_origin_are_refused(client, headers, status):
    response = client.post("/api/training/stop", json={}, headers=headers)
    assert response.status_code == status


def test_delete_from_another_origin_is_refused(client):
    response = client.delete("/api/configs/delete?name=x", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403


def test_a_non_loopback_host_without_a_token_gets_one_generated(monkeypatch, capsys, tmp_path):
    started = {}
    monkeypatch.setattr(socketio, "run", lambda app, **kw: started.update(kw, app=app))
    assert main(["--host", "0.0.0.0", "--port", "5999", "--root", str(tmp_path)]) == 0
    token = started["app"].config["ACCESS_TOKEN"]
    assert token and len(token) >= 24 and started["host"] == "0.0.0.0"
    assert f"login?token={token}" in capsys.readouterr().out
    started["app"].extensions["grpo_studio"].jobs.close()


def test_loopback_needs_no_token(monkeypatch, tmp_path):
    started = {}
    monkeypatch.setattr(socketio, "run", lambda app, **kw: started.update(kw, app=app))
    main(["--root", str(tmp_path)])
    assert started["host"] == "127.0.0.1" and started["port"] == 5000
    assert started["app"].config["ACCESS_TOKEN"] is None
    started["app"].extensions["grpo_studio"].jobs.close()


@pytest.mark.parametrize("host, status", [
    ("localhost:5000", 200),          # the names of this machine
    ("127.0.0.1:5000", 200),
    ("[::1]:5000", 200),
    ("evil.example", 403),            # a rebinding page's own name
    ("evil.example:5000", 403),
])
def test_without_a_token_only_this_machines_host_names_are_served(client, host, status):
    assert client.get("/api/system/status", headers={"Host": host}).status_code == status


def test_a_socket_handshake_under_a_foreign_host_is_refused(app, client):
    refused = socketio.test_client(app, headers={"Host": "evil.example"})
    assert not refused.is_connected()


@pytest.mark.parametrize("target, expected", [
    ("/runs", "/runs"),                       # a path on this site
    ("/runs?x=1", "/runs?x=1"),
    ("//evil.example/x", "/"),                # another host
    ("/\\evil.example", "/"),                 # browsers read /\ as //
    ("https://evil.example", "/"),            # a scheme
    ("runs", "/"),                            # not a path from the root
    ("/runs\r\nSet-Cookie: x=1", "/"),        # control characters
    (None, "/"),
])
def test_redirect_targets_stay_on_this_site(target, expected):
    from routes.common import safe_next
    assert safe_next(target) == expected


def test_the_language_menu_never_redirects_off_site(client):
    response = client.get("/language/fr?next=/%5Cevil.example")
    assert response.headers["Location"] == "/"
