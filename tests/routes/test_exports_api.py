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
