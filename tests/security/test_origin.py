"""Requests from elsewhere: without a token only this machine's host names are served (DNS
rebinding), and a state-changing request (POST, PUT, PATCH, DELETE) or Socket.IO handshake whose
`Origin` is another site, or that the browser marks `Sec-Fetch-Site: cross-site`, is refused —
checked on every such route of `app.url_map`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import url_for

from routes.extensions import socketio
from tests.conftest import tiny_config

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
FOREIGN = [
    {"Origin": "http://evil.example"},                 # another site
    {"Origin": "http://localhost.evil.example"},       # a look-alike
    {"Origin": "null"},                                # a sandboxed frame or file://
    {"Origin": "http://localhost:1234"},               # another port is another origin
    {"Sec-Fetch-Site": "cross-site"},                  # the browser says so
]


def state_changing_requests(app: Any) -> list[tuple[str, str]]:
    with app.test_request_context():
        return [(m, url_for(rule.endpoint, **{arg: "x" for arg in rule.arguments}))
                for rule in app.url_map.iter_rules() for m in sorted(rule.methods or ())
                if m in UNSAFE]


# ---- Host ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["localhost:5000", "127.0.0.1:5000", "[::1]:5000", "localhost"])
def test_this_machines_host_names_are_served(client, host):
    assert client.get("/api/system/status", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", [
    "evil.example",               # a rebinding page's own name
    "evil.example:5000",
    "localhost.evil.example",     # a look-alike
    "127.0.0.1.nip.io",           # a name that resolves to loopback is still another site
])
def test_without_a_token_another_host_name_is_refused(client, host):
    response = client.get("/api/system/status", headers={"Host": host})
    assert response.status_code == 403 and "Host" in response.json["error"]


def test_a_socket_handshake_under_a_foreign_host_is_refused(app):
    assert not socketio.test_client(app, headers={"Host": "evil.example"}).is_connected()


# ---- Origin --------------------------------------------------------------------------------------
def test_the_walk_finds_state_changing_routes_of_each_method(app):
    methods = {m for m, _ in state_changing_requests(app)}
    assert methods == {"POST", "PATCH", "DELETE"}


@pytest.mark.parametrize("headers", FOREIGN)
def test_every_state_changing_route_refuses_another_origin(app, client, headers):
    served = [f"{m} {url}: {r.status_code}" for m, url in state_changing_requests(app)
              if (r := client.open(url, method=m, headers=headers)).status_code != 403
              or "another site" not in r.json["error"]]
    assert served == []


def test_delete_from_another_origin_is_refused_before_it_deletes(client, services):
    saved = client.post("/api/configs/save",
                        json={"name": "keep", "config": tiny_config(Path("/nonexistent"))})
    assert saved.status_code == 201
    response = client.delete("/api/configs/delete?name=keep",
                             headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert services.configs.load("keep")["name"] == "keep"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://localhost"},               # this server
    {"Sec-Fetch-Site": "same-origin"},
    {},                                           # scripts send no Origin
])
def test_same_origin_and_scripts_reach_the_view(client, headers):
    response = client.post("/api/training/stop", json={}, headers=headers)
    assert response.status_code == 400 and response.json["field"] == "session_id"


def test_reading_from_another_origin_is_not_a_state_change(client):
    response = client.get("/api/system/status", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", FOREIGN[:3])
def test_a_socket_handshake_from_another_origin_is_refused(app, headers):
    assert not socketio.test_client(app, headers=headers).is_connected()


def test_a_socket_handshake_from_this_origin_is_accepted(app):
    client = socketio.test_client(app, headers={"Origin": "http://localhost"})
    assert client.is_connected()
    client.disconnect()
