"""The exports endpoints: requests checked with the field named, unknown exports 404, files only by
a listed name."""
from __future__ import annotations

import pytest

from core.files import write_json_atomic


def test_a_bad_request_names_its_field(client):
    response = client.post("/api/exports/create", json={"session_id": "nope", "format": "zip"})
    assert response.status_code == 400 and response.json["field"] == "format"
    response = client.post("/api/exports/create", json={"session_id": "nope", "format": "gguf"})
    assert response.status_code == 404  # no such run
    assert client.get("/api/exports/list").json == {"exports": []}


@pytest.mark.parametrize("url", ["/api/exports/nope", "/api/exports/e1/files/..%2Fexport.json",
                                 "/api/exports/e1/files/export.log",
                                 "/api/exports/..%2F..%2Fetc/files/passwd"])
def test_unknown_exports_and_unlisted_files_answer_404(client, app, url):
    folder = app.config["EXPORTS_DIR"] / "e1"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "export.json", {"status": "done", "files": [
        {"name": "model.gguf", "size": 1}]})
    (folder / "model.gguf").write_bytes(b"x")
    (folder / "export.log").write_text("log")
    download = client.get("/api/exports/e1/files/model.gguf")
    assert download.data == b"x" and "attachment" in download.headers["Content-Disposition"]
    download.close()
    assert client.get(url).status_code == 404


def test_an_export_is_listed_and_deleted(client, app):
    folder = app.config["EXPORTS_DIR"] / "e2"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "export.json", {"status": "done", "format": "adapter",
                                               "files": [{"name": "a", "size": 5}]})
    listed = client.get("/api/exports/list").json["exports"]
    assert [(e["export_id"], e["size"]) for e in listed] == [("e2", 5)]
    assert client.delete("/api/exports/e2").status_code == 200
    assert not folder.exists() and client.get("/api/exports/e2").status_code == 404


@pytest.mark.slow
def test_a_finished_run_exports_through_the_api_and_its_files_download(client, services,
                                                                     tiny_model, tmp_path):
    from core.config import validate_config
    from core.run_dir import create_run
    from core.worker import run_worker
    from tests.conftest import tiny_config, wait_for
    run = create_run(validate_config(tiny_config(tiny_model, training={"max_steps": 1},
                                                 output={"sample_every": 0})),
                     services.runs.outputs, run_id="done-run")
    run_worker(run)
    answer = client.post("/api/exports/create", json={"session_id": "done-run",
                                                      "format": "adapter"})
    assert answer.status_code == 202
    export_id = answer.json["export_id"]
    state = wait_for(lambda: services.exports.tick() or (
        lambda s: s if s["status"] in ("done", "failed") else None)(
        client.get(f"/api/exports/{export_id}").json), 300, "the export to finish")
    assert state["status"] == "done", state["error"]
    assert state["verified"] and "adapter_config.json" in {f["name"] for f in state["files"]}
    download = client.get(f"/api/exports/{export_id}/files/adapter_config.json")
    assert download.status_code == 200 and b"lora" in download.data.lower()
    download.close()
