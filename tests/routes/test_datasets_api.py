"""The dataset endpoints the wizard uses: upload (limits, names), preview, formatted prompt."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import tiny_config, wait_for

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
    (b'\xff\xfe{\x00}\x00\n\x00', "utf16.jsonl", 400, "not UTF-8"),  # unreadable whole
])
def test_bad_uploads_are_refused_and_leave_nothing(client, app, data, name, status, message):
    response = upload(client, data, name)
    assert response.status_code == status and message in response.json["error"]
    leftovers = list(Path(app.config["UPLOADS_DIR"]).glob("*")) \
        if Path(app.config["UPLOADS_DIR"]).exists() else []
    assert leftovers == []


def test_errors_name_an_upload_as_the_user_named_it(client, monkeypatch):
    """Never by its stored `<id><ext>` name: not at upload, nor when a tool reads it later."""
    import services.dataset_tools
    monkeypatch.setattr(services.dataset_tools, "UPLOAD_CHECK_ROWS", 3)  # the upload checks 3
    refused = upload(client, b'\xff\xfe{\x00}\x00\n\x00', "../my rows.jsonl")
    assert refused.json["error"].startswith("my rows.jsonl is not UTF-8 text"), refused.json
    rows = ",\n".join(['{"question": "1+1?", "answer": "2"}'] * 30 + ['{"question": }'])
    entry = upload(client, f"[{rows}]".encode(), "list.json").json
    answer = client.post("/api/datasets/validate", json={"id": entry["id"]})
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "list.json line 31: invalid JSON (Expecting value)"
    job_id = client.post("/api/datasets/stats", json={"id": entry["id"]}).json["job_id"]
    job = wait_for(lambda: (j := client.get(f"/api/datasets/jobs/{job_id}").json)["status"]
                   != "running" and j, 60, "the statistics job to end")
    assert job["error"] == "list.json line 31: invalid JSON (Expecting value)", job


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


# the datasets page's API -------------------------------------------------------------------
DATA = Path(__file__).resolve().parent.parent / "data" / "datasets"


def upload_fixture(client, name):
    response = upload(client, (DATA / name).read_bytes(), name)
    assert response.status_code == 201, response.json
    return response.json


def uploads_of(client):
    return [d for d in client.get("/api/datasets/list").json["datasets"] if d["source"] == "file"]


def test_upload_answers_the_entry_with_its_shape_and_problems(client):
    entry = upload_fixture(client, "broken.jsonl")
    assert {"id", "name", "file", "format", "rows", "size", "uploaded_at", "source", "path",
            "shape", "confidence"} <= set(entry)
    assert (entry["format"], entry["rows"], entry["shape"]) == ("jsonl", 5, "qa")
    assert entry["fields"] == ["question", "answer"] and entry["mapping"]["response"] == "answer"
    assert [e["message"] for e in entry["errors"]] == [
        "line 3: invalid JSON (Expecting value)",
        "line 5: expected an object with fields, found a list"]
    assert (entry["invalid"], entry["more"]) == (2, False)
    assert uploads_of(client)[0]["rows"] == 5


def test_a_refused_upload_leaves_the_uploads_folder_as_it_was(client, app):
    upload_fixture(client, "qa.csv")
    folder = Path(app.config["UPLOADS_DIR"])
    before = sorted(p.name for p in folder.iterdir())
    for data, name, status in [(b"x" * ((64 << 10) + 1), "big.jsonl", 413),
                               (b"{}", "notes.docx", 400)]:
        response = upload(client, data, name)
        assert response.status_code == status and response.json["field"] == "file"
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_parent_path_name_is_stored_inside_the_uploads_folder(client, app):
    entry = upload(client, ROWS, "../../x.jsonl").json
    folder = Path(app.config["UPLOADS_DIR"]).resolve()
    assert Path(entry["path"]).parent == folder and entry["name"] == "x.jsonl"
    assert not (folder.parent.parent / "x.jsonl").exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [entry["file"], f"{entry['id']}.meta.json"])


def test_rename_download_and_delete(client):
    entry = upload_fixture(client, "qa.csv")
    renamed = client.patch(f"/api/datasets/{entry['id']}", json={"name": "capitals"})
    assert renamed.status_code == 200 and renamed.json["name"] == "capitals"
    assert uploads_of(client)[0]["name"] == "capitals"
    with client.get(f"/api/datasets/{entry['id']}/download") as got:
        assert got.status_code == 200 and got.data == (DATA / "qa.csv").read_bytes()
        assert "attachment; filename=capitals.csv" in got.headers["Content-Disposition"]
    assert client.delete(f"/api/datasets/{entry['id']}").json == {"deleted": entry["id"]}
    assert uploads_of(client) == []


@pytest.mark.parametrize("method, path, body, status, field", [
    ("patch", "/api/datasets/{id}", {"name": ""}, 400, "name"),
    ("patch", "/api/datasets/{id}", {"name": "x" * 201}, 400, "name"),
    ("patch", "/api/datasets/0123456789abcdef", {"name": "x"}, 404, "id"),
    ("delete", "/api/datasets/0123456789abcdef", None, 404, "id"),
    ("get", "/api/datasets/0123456789abcdef/download", None, 404, "id"),
    ("get", "/api/datasets/jobs/stats-000000000000", None, 404, "job_id"),
    ("post", "/api/datasets/dedup/stats-000000000000/write", {}, 404, "job_id"),
])
def test_unknown_ids_and_bad_names_are_refused(client, method, path, body, status, field):
    entry = upload_fixture(client, "qa.csv")
    response = getattr(client, method)(path.format(id=entry["id"]), json=body)
    assert response.status_code == status and response.json["field"] == field


def test_preview_pages_with_an_offset_and_lists_broken_rows(client):
    entry = upload_fixture(client, "broken.jsonl")
    first = client.post("/api/datasets/preview", json={"id": entry["id"], "samples": 2}).json
    assert [r["question"] for r in first["rows"]] == ["q1", "q2"] and first["offset"] == 0
    assert first["problems"] == [] and first["more"] is True
    page = client.post("/api/datasets/preview",
                       json={"id": entry["id"], "samples": 3, "offset": 2}).json
    assert [r["question"] for r in page["rows"]] == ["q6"] and page["more"] is False
    assert page["problems"] == [
        {"row": 3, "message": "line 3: invalid JSON (Expecting value)"},
        {"row": 5, "message": "line 5: expected an object with fields, found a list"}]
    detection = page["detection"]
    assert (detection["shape"], detection["mapping"]["instruction"]) == ("qa", "question")
    assert all(isinstance(a, list) and len(a) == 2 for a in detection["alternatives"])
    bad = client.post("/api/datasets/preview", json={"id": entry["id"], "offset": -1})
    assert bad.status_code == 400 and bad.json["field"] == "offset"


def test_validate_reports_problems_by_row(client):
    entry = upload_fixture(client, "empty_field.jsonl")
    report = client.post("/api/datasets/validate", json={"id": entry["id"],
                                                         "format": "alpaca"}).json
    assert (report["rows"], report["valid"], report["invalid"], report["more"]) == (5, 2, 3, False)
    assert [p["message"] for p in report["problems"]] == [
        'line 2: "output" is empty', 'line 4: "instruction" is missing',
        'line 5: "instruction" is empty']
    assert report["problems"][0]["field"] == "output" and report["mapping"]["response"] == "output"


@pytest.mark.parametrize("body, status, field", [
    ({"id": "0123456789abcdef"}, 404, "id"),
    ({"id": ""}, 400, "id"),
    ({"format": "poem"}, 400, "format"),
    ({"mapping": {"prompt": "q"}}, 400, "mapping.prompt"),          # unknown role
    ({"mapping": {"instruction": "nope"}}, 400, "mapping.instruction"),  # unknown column
    ({"max_chars": 0}, 400, "max_chars"),
    ({"txt_mode": "page"}, 400, "txt_mode"),
])
def test_validate_names_the_key_to_fix(client, body, status, field):
    entry = upload_fixture(client, "qa.csv")
    response = client.post("/api/datasets/validate", json={"id": entry["id"], **body})
    assert response.status_code == status and response.json["field"] == field


def wait_job(client, job_id):
    from tests.conftest import wait_for
    return wait_for(lambda: (j := client.get(f"/api/datasets/jobs/{job_id}").json)["status"]
                    != "running" and j, 60, f"dataset job {job_id}")


def test_stats_job_counts_tokens_and_tells_only_the_requesting_socket(client, app, tiny_model):
    from tokenizers import Tokenizer

    from routes.extensions import socketio
    entry = upload_fixture(client, "gsm8k.jsonl")
    listener, other = (socketio.test_client(app, flask_test_client=client) for _ in range(2))
    sid = socketio.server.manager.sid_from_eio_sid(listener.eio_sid, "/")
    started = client.post("/api/datasets/stats", json={
        "id": entry["id"], "model": str(tiny_model), "max_seq_length": 20, "socket_id": sid})
    assert started.status_code == 202
    job = wait_job(client, started.json["job_id"])
    assert job["status"] == "done" and job["kind"] == "stats", job
    result = job["result"]
    tokenizer = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    rows = [json.loads(line) for line in (DATA / "gsm8k.jsonl").read_text().splitlines()]
    prompts = [len(tokenizer.encode(r["question"], add_special_tokens=False).ids) for r in rows]
    assert (result["rows"], result["broken_rows"], result["unit"]) == (3, 0, "tokens")
    assert (result["prompt"]["count"], result["prompt"]["total"]) == (3, sum(prompts))
    assert sum(result["prompt"]["histogram"]["counts"]) == 3
    events = [e["args"][0] for e in listener.get_received() if e["name"] == "dataset_progress"]
    assert events[-1] == {"job_id": job["job_id"], "kind": "stats", "status": "done",
                          "done": 0, "message": "done: 3 rows"}
    assert not [e for e in other.get_received() if e["name"] == "dataset_progress"]


@pytest.mark.parametrize("body, status, field", [
    ({"model": "owner/not-downloaded"}, 400, "model"),
    ({"max_seq_length": 0}, 400, "max_seq_length"),
    ({"mapping": {"response": "nope"}}, 400, "mapping.response"),
    ({"id": "arithmetic-nope"}, 404, "id"),
])
def test_stats_refuses_before_starting(client, body, status, field):
    entry = upload_fixture(client, "qa.csv")
    response = client.post("/api/datasets/stats", json={"id": entry["id"], **body})
    assert response.status_code == status and response.json["field"] == field, response.json


def test_dedup_job_and_its_cleaned_copy(client):
    lines = [{"question": "What is the capital of France?", "answer": "Paris"},
             {"question": "what is the capital of  France?", "answer": "paris"},  # exact
             {"question": "Name a primary colour.", "answer": "Red"}]
    data = "".join(json.dumps(r) + "\n" for r in lines).encode()
    entry = upload(client, data, "dups.jsonl").json
    started = client.post("/api/datasets/dedup", json={"id": entry["id"], "threshold": 0.9})
    assert started.status_code == 202
    job = wait_job(client, started.json["job_id"])
    assert job["status"] == "done" and job["result"]["exact_duplicates"] == 1
    assert job["result"]["clusters"][0]["rows"] == [1, 2]
    written = client.post(f"/api/datasets/dedup/{job['job_id']}/write", json={})
    assert written.status_code == 201
    body = written.json
    assert (body["rows"], body["removed"]) == (2, 1)
    assert body["entry"]["derived_from"] == entry["id"]
    assert body["entry"]["name"] == "dups (deduplicated).jsonl"
    assert body["entry"]["id"] in {d["id"] for d in uploads_of(client)}
    assert len(Path(body["entry"]["path"]).read_text().splitlines()) == 2


@pytest.mark.parametrize("body, status, field", [
    ({"threshold": 0}, 400, "threshold"),
    ({"threshold": 1.5}, 400, "threshold"),
    ({"fields": ["nope"]}, 400, "fields"),
    ({"fields": "question"}, 400, "fields"),
])
def test_dedup_refuses_before_starting(client, body, status, field):
    entry = upload_fixture(client, "qa.csv")
    response = client.post("/api/datasets/dedup", json={"id": entry["id"], **body})
    assert response.status_code == status and response.json["field"] == field


def test_a_stats_job_has_no_cleaned_copy_and_a_third_job_waits(client, monkeypatch):
    from services import dataset_jobs
    entry = upload_fixture(client, "qa.csv")
    job_id = client.post("/api/datasets/stats", json={"id": entry["id"]}).json["job_id"]
    wait_job(client, job_id)
    response = client.post(f"/api/datasets/dedup/{job_id}/write", json={"name": "x"})
    assert response.status_code == 400 and response.json["field"] == "job_id"
    monkeypatch.setattr(dataset_jobs, "MAX_RUNNING", 0)
    assert client.post("/api/datasets/stats", json={"id": entry["id"]}).status_code == 429


def test_split_stores_each_part_as_an_upload(client):
    entry = upload_fixture(client, "gsm8k.jsonl")
    response = client.post("/api/datasets/split", json={"id": entry["id"], "validation": 0.3,
                                                        "test": 0.3, "seed": 1})
    assert response.status_code == 201
    parts = response.json["parts"]
    assert set(parts) == {"train", "validation", "test"}
    assert [parts[p]["rows"] for p in ("train", "validation", "test")] == [1, 1, 1]
    assert {d["id"] for d in uploads_of(client)} == {entry["id"], *(p["id"] for p in
                                                                     parts.values())}


@pytest.mark.parametrize("body, field", [
    ({}, "validation"),
    ({"validation": 0}, "validation"),
    ({"validation": 0.9, "test": 0.5}, "validation"),   # leaves no row to train on
    ({"validation": 0.2, "seed": "x"}, "seed"),
])
def test_split_names_the_key_to_fix(client, body, field):
    entry = upload_fixture(client, "gsm8k.jsonl")
    response = client.post("/api/datasets/split", json={"id": entry["id"], **body})
    assert response.status_code == 400 and response.json["field"] == field
    assert len(uploads_of(client)) == 1


def test_convert_stores_the_converted_copy(client):
    entry = upload_fixture(client, "qa.csv")
    response = client.post("/api/datasets/convert", json={"id": entry["id"],
                                                          "target": "alpaca", "as": "jsonl"})
    assert response.status_code == 201
    body = response.json
    assert (body["written"], body["skipped"], body["problems"]) == (3, 0, [])
    converted = body["entry"]
    assert (converted["format"], converted["rows"], converted["shape"]) == ("jsonl", 3, "alpaca")
    first = json.loads(Path(converted["path"]).read_text().splitlines()[0])
    assert first["instruction"] == "What is the boiling point of water in Celsius?"
    assert converted["id"] in {d["id"] for d in uploads_of(client)}
    bad = client.post("/api/datasets/convert", json={"id": entry["id"], "target": "poem"})
    assert bad.status_code == 400 and bad.json["field"] == "target"


def test_the_upload_limit_is_set_when_the_server_starts(monkeypatch, tmp_path):
    from flask_app import main
    from routes.extensions import socketio
    started = {}
    monkeypatch.setattr(socketio, "run", lambda app, **kw: started.update(app=app))
    main(["--root", str(tmp_path), "--max-upload-mb", "3"])
    app = started["app"]
    assert app.config["MAX_UPLOAD_BYTES"] == 3 << 20
    assert app.extensions["grpo_studio"].datasets.max_upload_bytes == 3 << 20
    app.extensions["grpo_studio"].close()
    monkeypatch.setenv("GRPO_STUDIO_MAX_UPLOAD_MB", "0")
    with pytest.raises(SystemExit):  # argparse names the option and why
        main(["--root", str(tmp_path)])


def test_previews_read_data_files_only_and_bound_the_offset(client, services):
    entry = upload(client, b'{"question": "a", "answer": "b"}\n', "x\x00y\x07.jsonl").json
    assert entry["name"] == "xy.jsonl"  # control characters never reach a label
    meta = f"{entry['id']}.meta.json"
    answer = client.post("/api/datasets/preview", json={"source": "file", "path": meta})
    assert answer.status_code == 400 and "upload the file first" in answer.json["error"]
    answer = client.post("/api/datasets/preview", json={"id": entry["id"], "offset": 10**30})
    assert answer.status_code == 400 and answer.json["field"] == "offset"
