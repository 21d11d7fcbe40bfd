"""The dataset endpoints the wizard uses: upload (limits, names), preview, formatted prompt."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.conftest import tiny_config

ROWS = b'{"question": "1+1?", "answer": "2"}\n{"question": "2+2?", "answer": "4"}\n'


def upload(client, data: bytes, name: str):
    return client.post("/api/datasets/upload", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_stores_under_a_server_chosen_name(client, app):
    response = upload(client, ROWS, "../../my data.jsonl")
    assert response.status_code == 201
    entry = response.json
    stored = Path(entry["path"])
    assert stored.parent == Path(app.config["UPLOADS_DIR"]).resolve()
    assert stored.name == f"{entry['id']}.jsonl" and entry["name"] == "my data.jsonl"
    assert entry["fields"] == ["question", "answer"]
    listed = [d for d in client.get("/api/datasets/list").json["datasets"] if d["source"] == "file"]
    assert [d["id"] for d in listed] == [entry["id"]]


@pytest.mark.parametrize("data, name, status, message", [
    (b"x" * ((64 << 10) + 1), "big.jsonl", 413, "64 KB limit"),  # over the test limit
    (b"print(1)", "reward.py", 400, "upload one of"),           # not a dataset extension
    (b'{"q": 1}\nnot json\n', "broken.jsonl", 400, "line 2"),   # a broken line, named
])
def test_bad_uploads_are_refused_and_leave_nothing(client, app, data, name, status, message):
    response = upload(client, data, name)
    assert response.status_code == status and message in response.json["error"]
    leftovers = list(Path(app.config["UPLOADS_DIR"]).glob("*")) \
        if Path(app.config["UPLOADS_DIR"]).exists() else []
    assert leftovers == []


def test_preview_shows_rows_fields_and_the_detected_mapping(client):
    response = client.post("/api/datasets/preview", json={"source": "builtin",
                                                           "path": "arithmetic", "samples": 3})
    body = response.json
    assert len(body["rows"]) == 3 and body["fields"] == ["question", "answer"]
    assert body["suggested_mapping"]["instruction"] == "question"
    assert body["suggested_mapping"]["response"] == "answer"


@pytest.mark.parametrize("body, message", [
    ({"source": "file", "path": "/etc/passwd"}, "only uploaded files"),   # outside the roots
    ({"source": "file", "path": "../flask_app.py"}, "only uploaded files"),
    ({"source": "builtin", "path": "nope"}, "no bundled dataset"),
    ({"source": "builtin", "path": "arithmetic", "samples": 0}, "samples"),
])
def test_preview_refuses_what_it_cannot_show(client, body, message):
    response = client.post("/api/datasets/preview", json=body)
    assert response.status_code == 400 and message in response.json["error"]


def test_formatted_prompt_uses_the_models_chat_template(client, tiny_model):
    config = tiny_config(tiny_model)
    body = client.post("/api/datasets/format", json={"config": config}).json
    assert body["prompt"].startswith("<|im_start|>system\n")
    assert body["prompt"].endswith("<|im_start|>assistant\n")
    assert body["reference"] == "6" and body["response"].startswith("<think>")


def test_a_json_upload_keeps_its_rows(client):
    data = b'[{"question": "1+1?", "answer": "2"}]'
    entry = upload(client, data, "rows.json").json
    assert Path(entry["path"]).read_bytes() == data
    preview = client.post("/api/datasets/preview", json={"id": entry["id"]}).json
    assert preview["rows"] == [{"question": "1+1?", "answer": "2"}]


def test_a_file_that_is_not_what_its_extension_says_is_refused_and_removed(client, app):
    response = upload(client, b"PAR1 this is not parquet", "table.parquet")
    assert response.status_code == 400 and "cannot read" in response.json["error"]
    assert list(Path(app.config["UPLOADS_DIR"]).glob("*")) == []


@pytest.mark.parametrize("body, field", [
    ({"source": "builtin", "path": "../../data/arithmetic"}, "dataset.path"),  # a name, not a path
    ({"source": "usb", "path": "x"}, "dataset.source"),                       # unknown source
    ({"source": "builtin", "path": "arithmetic", "mapping": {"prompt": "q"}},
     "dataset.mapping.prompt"),                                               # unknown role
])
def test_preview_names_the_field_to_fix(client, body, field):
    response = client.post("/api/datasets/preview", json=body)
    assert response.status_code == 400 and response.json["field"] == field


def test_format_names_a_bad_template_field(client):
    response = client.post("/api/datasets/format",
                           json={"config": {"template": {"system_prompt": 3}}})
    assert response.status_code == 400 and response.json["field"] == "template.system_prompt"
