"""The dataset catalog's download API and service: a catalog split downloaded into the uploads
folder (progress to the requester's socket only), listed as an upload, refused a second time,
cancelled without leftovers, and failing at once offline.

The Hugging Face hub cannot be reached from here, so only the remote side is a stand-in
(tests/hub_dataset_stand_in.py, reached through HF_ENDPOINT); the child process, the events and
the files are real.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.config import DatasetSection, validate_section
from core.datasets import training_examples
from routes.extensions import socketio
from services.dataset_catalog import CatalogDownloads
from tests.conftest import closed_port_url, wait_for
from tests.hub_dataset_stand_in import dataset_stand_in, parquet_repo

CATALOG = Path(__file__).resolve().parent.parent / "data" / "datasets" / "catalog"


@pytest.fixture
def downloads(app: Any, services: Any) -> Any:
    """The catalog downloads service and its routes (registered here until the app does)."""
    from routes import dataset_catalog
    if "dataset_catalog" not in app.blueprints:
        app.register_blueprint(dataset_catalog.bp)
    if not hasattr(services, "dataset_catalog"):
        services.dataset_catalog = CatalogDownloads(
            app.config["UPLOADS_DIR"],
            lambda event, payload, room: socketio.emit(event, payload, to=room))
    yield services.dataset_catalog
    services.dataset_catalog.close()


@pytest.fixture
def squad_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    repo = parquet_repo(tmp_path / "hub-repo", CATALOG / "squad_v2.jsonl", "squad_v2", "train",
                        [2, 1])
    hub = dataset_stand_in({"rajpurkar/squad_v2": repo})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.close()


def ended(client: Any, download_id: str, timeout: float = 60) -> dict[str, Any]:
    def state() -> Any:
        answer = client.get(f"/api/datasets/catalog/downloads/{download_id}")
        assert answer.status_code == 200, answer.json
        return answer.json["status"] != "running" and answer.json
    return wait_for(state, timeout, "the download to end")


def uploads_dir(app: Any) -> Path:
    return Path(app.config["UPLOADS_DIR"])


@pytest.mark.parametrize("body", [{}, {"id": "someone/else"}, {"id": "../../x"}, {"id": 3}])
def test_only_a_catalog_dataset_can_be_downloaded(client, downloads, body):
    answer = client.post("/api/datasets/catalog/download", json=body)
    assert answer.status_code == 400 and answer.json["field"] == "id"
    assert "openai/gsm8k" in answer.json["error"]  # the choices are named


def test_offline_a_download_fails_at_once_saying_the_hub_cannot_be_reached(
        app, client, downloads, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # refused, like no network
    answer = client.post("/api/datasets/catalog/download", json={"id": "openai/gsm8k"})
    assert answer.status_code == 202
    state = ended(client, answer.json["download_id"], timeout=20)
    assert state["status"] == "failed"
    assert state["error"].startswith("the Hugging Face hub cannot be reached")
    assert not uploads_dir(app).exists() or list(uploads_dir(app).iterdir()) == []


def test_a_download_reports_to_its_socket_and_lands_as_an_upload(
        app, client, downloads, squad_hub):
    listener, other = (socketio.test_client(app, flask_test_client=client) for _ in range(2))
    sid = socketio.server.manager.sid_from_eio_sid(listener.eio_sid, "/")
    answer = client.post("/api/datasets/catalog/download",
                         json={"id": "rajpurkar/squad_v2", "socket_id": sid})
    assert answer.status_code == 202
    state = ended(client, answer.json["download_id"])
    assert state["status"] == "done" and state["rows"] == 3 and state["progress"] == 1.0

    events = [e["args"][0] for e in listener.get_received()
              if e["name"] == "dataset_download_progress"]
    assert events and {e["download_id"] for e in events} == {answer.json["download_id"]}
    assert events[-1]["status"] == "done" and events[-1]["upload_id"] == state["upload_id"]
    assert not [e for e in other.get_received() if e["name"] == "dataset_download_progress"]

    [upload] = [d for d in client.get("/api/datasets/list").json["datasets"]
                if d.get("id") == state["upload_id"]] or [None]
    assert upload["source"] == "file" and upload["name"] == "SQuAD v2 (train)"
    # the upload carries the catalog's mapping, which the wizard takes with it
    section = validate_section(DatasetSection, {
        "source": "file", "path": upload["path"], "mapping": upload["mapping"]}, "dataset")
    assert [e.reference for e in training_examples(section, "grpo")][0] == "France"

    [entry] = [d for d in client.get("/api/datasets/catalog").json["datasets"]
               if d["id"] == "rajpurkar/squad_v2"]
    assert entry["downloaded"]["id"] == state["upload_id"]
    again = client.post("/api/datasets/catalog/download", json={"id": "rajpurkar/squad_v2"})
    assert again.status_code == 409 and again.json["field"] == "id"


def test_a_cancelled_download_leaves_nothing(app, client, downloads, squad_hub):
    squad_hub.slow_bytes_per_s = 1 << 10
    download_id = client.post("/api/datasets/catalog/download",
                              json={"id": "rajpurkar/squad_v2"}).json["download_id"]
    wait_for(lambda: client.get(f"/api/datasets/catalog/downloads/{download_id}")
             .json["total_bytes"], 30, "the download to start fetching")
    answer = client.delete(f"/api/datasets/catalog/downloads/{download_id}")
    assert answer.status_code == 200 and answer.json["status"] == "cancelled"
    assert list(uploads_dir(app).iterdir()) == []


def test_leftovers_of_a_killed_download_are_removed(app, downloads):
    dead = uploads_dir(app) / f".hub-0123.partial-{2 ** 22 + 7}"  # no process has this pid
    mine = uploads_dir(app) / f".hub-4567.partial-{os.getpid()}"
    dead.mkdir(parents=True)
    mine.mkdir()
    downloads.remove_leftovers()
    assert not dead.exists() and mine.exists()


@pytest.mark.parametrize("path", ["/api/datasets/catalog/downloads/0123456789ab",
                                  "/api/datasets/catalog/downloads/nope"])
def test_an_unknown_download_is_not_found(client, downloads, path):
    assert client.get(path).status_code == 404
    assert client.delete(path).status_code == 404
