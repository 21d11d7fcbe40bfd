"""The models API: the page, hub-id validation, downloads (progress to the requester's socket,
offline failure, cancel), the cache listing and deletion.

The Hugging Face hub cannot be reached from here, so the download tests mock only the remote hub:
tests/hub_stand_in.py answers the requests huggingface_hub's snapshot_download makes, reached
through HF_ENDPOINT; the child process, progress events and cache folder are real.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from routes.extensions import socketio
from tests.conftest import closed_port_url, wait_for


@pytest.fixture
def model_cache(services: Any, model_cache_dir: Path) -> Any:
    yield services.model_cache
    services.model_cache.close()  # no download outlives its test


def ended(client: Any, download_id: str, timeout: float = 90) -> dict[str, Any]:
    def state() -> Any:
        answer = client.get(f"/api/models/downloads/{download_id}")
        assert answer.status_code == 200, answer.json
        return answer.json["status"] != "running" and answer.json
    return wait_for(state, timeout, "the download to end")


def test_the_models_page_has_the_download_field_and_the_cache_table(client, model_cache):
    page = client.get("/models")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="model-id"' in html and 'id="cached-models"' in html
    assert "js/models.js" in html


@pytest.mark.parametrize("body", [
    {},                                   # no model_id
    {"model_id": ""},                     # empty
    {"model_id": "../../etc/passwd"},     # a path
    {"model_id": "owner/.."},             # climbs out
    {"model_id": "/abs/path"},            # absolute
    {"model_id": 42},                     # not a string
])
def test_a_bad_model_id_is_refused_at_its_field(client, model_cache, body):
    answer = client.post("/api/models/download", json=body)
    assert answer.status_code == 400
    assert answer.json["field"] == "model_id" and answer.json["error"]


def test_a_body_that_is_not_json_is_refused(client, model_cache):
    answer = client.post("/api/models/download", data="model_id=x/y")
    assert answer.status_code == 400


def test_offline_a_download_fails_at_once_saying_the_hub_cannot_be_reached(
        client, model_cache, model_cache_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # refused, like no network
    answer = client.post("/api/models/download", json={"model_id": "Qwen/Qwen3-0.6B"})
    assert answer.status_code == 202
    state = ended(client, answer.json["download_id"], timeout=20)
    assert state["status"] == "failed"
    assert "the Hugging Face hub cannot be reached" in state["error"]
    assert not (model_cache_dir / "models" / "Qwen--Qwen3-0.6B").exists()


def test_a_download_reports_to_its_socket_then_is_listed_and_deleted(
        app, client, model_cache, hub_stand_in, model_cache_dir):
    listener, other = (socketio.test_client(app, flask_test_client=client) for _ in range(2))
    sid = socketio.server.manager.sid_from_eio_sid(listener.eio_sid, "/")
    answer = client.post("/api/models/download", json={"model_id": "acme/tiny", "socket_id": sid})
    assert answer.status_code == 202
    assert ended(client, answer.json["download_id"])["status"] == "done"

    events = [e["args"][0] for e in listener.get_received()
              if e["name"] == "model_download_progress"]
    assert events and {e["download_id"] for e in events} == {answer.json["download_id"]}
    assert set(events[-1]) >= {"download_id", "model_id", "progress", "downloaded_bytes",
                               "total_bytes", "message", "status"}
    assert events[-1]["status"] == "done" and events[-1]["progress"] == 1.0
    assert not [e for e in other.get_received() if e["name"] == "model_download_progress"]

    cached = client.get("/api/models/cache").json
    [model] = [m for m in cached["models"] if m["model_id"] == "acme/tiny"]
    folder = model_cache_dir / "models" / "acme--tiny"
    assert model["size"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert "acme--tiny" in {m["name"] for m in client.get("/api/models/list").json["cached"]}
    assert client.post("/api/models/download", json={"model_id": "acme/tiny"}).status_code == 409

    assert client.delete("/api/models/cache/acme--tiny").status_code == 200
    assert not folder.exists()
    assert client.delete("/api/models/cache/acme--tiny").status_code == 404


def test_a_download_is_cancelled_and_leaves_nothing(client, model_cache, hub_stand_in,
                                                    model_cache_dir):
    hub_stand_in.slow_bytes_per_s = 64 << 10
    download_id = client.post("/api/models/download",
                              json={"model_id": "acme/tiny"}).json["download_id"]
    wait_for(lambda: client.get(f"/api/models/downloads/{download_id}").json["total_bytes"], 30,
             "the download to start fetching")
    answer = client.delete(f"/api/models/downloads/{download_id}")
    assert answer.status_code == 200 and answer.json["status"] == "cancelled"
    assert list((model_cache_dir / "models").iterdir()) == []


@pytest.mark.parametrize("path", ["/api/models/downloads/0123456789ab",
                                  "/api/models/downloads/nope"])
def test_an_unknown_download_is_not_found(client, model_cache, path):
    assert client.get(path).status_code == 404
    assert client.delete(path).status_code == 404


@pytest.mark.parametrize("name", ["..", "%2E%2E", "nothing-here", ".hidden"])
def test_only_a_listed_cached_model_can_be_deleted(client, model_cache, model_cache_dir, name):
    (model_cache_dir / "models" / "acme--tiny").mkdir(parents=True)
    assert client.delete(f"/api/models/cache/{name}").status_code == 404
    assert (model_cache_dir / "models" / "acme--tiny").is_dir()
