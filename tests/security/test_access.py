"""The access token: bound to loopback by default, a token on any other address (given or generated
and printed), accepted as a header or exchanged once for a strict HttpOnly cookie, compared in
constant time, and needed by every route but the static files and the login page — found by
walking `app.url_map`, so a route added later is covered without being listed here."""
from __future__ import annotations

from typing import Any

import pytest
from flask import url_for

from flask_app import required_token
from routes.extensions import socketio
from routes.security import COOKIE, OPEN_ENDPOINTS
from tests.security.conftest import TOKEN, served

CHECKED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def protected_requests(app: Any) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route in the url map but the open ones, with a dummy
    value for each variable part."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint in OPEN_ENDPOINTS:
                continue
            url = url_for(rule.endpoint, **{arg: "x" for arg in rule.arguments})
            found += [(rule.endpoint, m, url) for m in sorted(rule.methods or ())
                      if m in CHECKED_METHODS]
    return found


# ---- binding -----------------------------------------------------------------------------------
def test_the_server_binds_loopback_by_default_without_a_token(monkeypatch, tmp_path):
    started = served(monkeypatch, ["--root", str(tmp_path)])
    assert started["host"] == "127.0.0.1" and started["port"] == 5000
    assert started["app"].config["ACCESS_TOKEN"] is None


def test_another_address_is_served_only_with_a_generated_and_printed_token(
        monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("GRPO_STUDIO_TOKEN", raising=False)
    started = served(monkeypatch, ["--host", "0.0.0.0", "--port", "5999",
                                         "--root", str(tmp_path)])
    token = started["app"].config["ACCESS_TOKEN"]
    assert token and len(token) >= 24 and started["host"] == "0.0.0.0"
    assert f"login?token={token}" in capsys.readouterr().out


@pytest.mark.parametrize("host", [
    "0.0.0.0",            # every IPv4 interface
    "::",                 # every IPv6 interface
    "192.168.1.20",       # a LAN address
    "studio.local",       # a name that is not this machine's loopback
])
@pytest.mark.parametrize("given", [None, ""])
def test_a_non_loopback_host_never_goes_without_a_token(host, given):
    assert required_token(host, given)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    assert required_token(host, None) is None


def test_a_given_token_is_used_as_it_is():
    assert required_token("0.0.0.0", "mine") == "mine"


# ---- the token -----------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"X-Access-Token": TOKEN},
    {"Authorization": f"Bearer {TOKEN}"},
])
def test_the_token_is_accepted_as_a_header(guarded, headers):
    assert guarded.test_client().get("/api/training/sessions", headers=headers).status_code == 200


@pytest.mark.parametrize("headers", [
    {"X-Access-Token": "s3cret-tokeN"},           # one letter off
    {"X-Access-Token": TOKEN[:-1]},              # a prefix
    {"Authorization": TOKEN},                     # not a Bearer token
    {"Cookie": f"{COOKIE}=nope"},
])
def test_a_wrong_token_is_refused(guarded, headers):
    response = guarded.test_client().get("/api/training/sessions", headers=headers)
    assert response.status_code == 401 and "access token" in response.json["error"]


def test_the_token_is_exchanged_for_a_strict_httponly_cookie(guarded):
    client = guarded.test_client()
    login = client.get(f"/login?token={TOKEN}&next=/runs")
    assert login.status_code == 302 and login.headers["Location"] == "/runs"
    cookie = login.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/api/training/sessions").status_code == 200


def test_a_wrong_token_at_login_sets_no_cookie(guarded):
    wrong = guarded.test_client().get("/login?token=nope")
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers


def test_tokens_are_compared_in_constant_time(guarded, monkeypatch):
    import routes.security
    compared = []
    real = routes.security.hmac.compare_digest
    monkeypatch.setattr(routes.security.hmac, "compare_digest",
                        lambda a, b: compared.append((a, b)) or real(a, b))
    guarded.test_client().get("/api/training/sessions", headers={"X-Access-Token": "guess"})
    assert compared == [(b"guess", TOKEN.encode())]


def test_login_never_redirects_off_site(guarded):
    login = guarded.test_client().get(f"/login?token={TOKEN}&next=//evil.example/x")
    assert login.headers["Location"] == "/"


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


# ---- every route -----------------------------------------------------------------------------
def test_the_url_map_walk_sees_every_page_and_api_family(guarded):
    endpoints = {endpoint for endpoint, _, _ in protected_requests(guarded)}
    families = {endpoint.split(".")[0] for endpoint in endpoints}
    assert {"wizard", "training", "configs", "datasets", "dataset_catalog", "models", "rewards",
            "exports", "testing", "system", "i18n"} <= families
    assert len(endpoints) > 60


def test_every_route_but_static_and_login_needs_the_token(guarded):
    client = guarded.test_client()
    open_routes = []
    for endpoint, method, url in protected_requests(guarded):
        response = client.open(url, method=method)
        api_refused = response.status_code == 401 and "access token" in \
            (response.get_json(silent=True) or {}).get("error", "")
        page_refused = response.status_code == 302 and \
            response.headers["Location"].startswith("/login")
        if not (api_refused or page_refused):
            open_routes.append(f"{method} {url} ({endpoint}): {response.status_code}")
    assert open_routes == []


def test_a_route_added_later_is_protected_without_being_listed(tmp_path):
    from flask_app import create_app
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "ACCESS_TOKEN": TOKEN})
    app.add_url_rule("/api/added-later", "added_later", lambda: {"secret": 1},
                     methods=["GET", "POST"])
    try:
        assert app.test_client().get("/api/added-later").status_code == 401
        assert app.test_client().post("/api/added-later").status_code == 401
    finally:
        app.extensions["grpo_studio"].close()


def test_static_files_and_the_login_page_need_no_token(guarded):
    client = guarded.test_client()
    assert client.get("/login").status_code == 200
    with client.get("/static/css/app.css") as static:
        assert static.status_code == 200


def test_the_socket_handshake_needs_the_token(guarded):
    refused = socketio.test_client(guarded)
    assert not refused.is_connected()


def test_the_socket_handshake_accepts_the_token(guarded):
    allowed = socketio.test_client(guarded, auth={"token": TOKEN})
    assert allowed.is_connected()
    allowed.disconnect()


def test_the_socket_handshake_accepts_the_login_cookie(guarded):
    client = guarded.test_client()
    client.get(f"/login?token={TOKEN}")
    allowed = socketio.test_client(guarded, flask_test_client=client)
    assert allowed.is_connected()
    allowed.disconnect()
